# JSON of many instances (watch --json): json.dumps of one dict per socket costs
# more than the dump of 19,000 sockets itself; this writes the same text
# straight from the attributes.

cdef extern from "Python.h":
    char *PyOS_double_to_string(double value, char format_code, int precision, int flags, int *type) except NULL
    void PyMem_Free(void *p)
    int Py_DTSF_ADD_DOT_0

cdef extern from "structmember.h":
    int T_OBJECT_EX


cdef Py_ssize_t _slot_offset(object cls, str name):
    """Where instances of cls keep attribute name, or -1 if it is not a
    __slots__ slot (a property, a class attribute, nothing)."""
    for klass in cls.__mro__:
        descr = klass.__dict__.get(name)
        if descr is not None:
            if (type(descr).__name__ == "member_descriptor"
                    and (<PyMemberDescrObject *>descr).d_member.type == T_OBJECT_EX):
                return (<PyMemberDescrObject *>descr).d_member.offset
            return -1
    return -1


cdef class _AttributeReader:
    """getattr(instance, name), read straight from the slot when instance's type
    has one: 380,000 getattr calls were a third of the writer's time."""
    cdef str name
    cdef object cls  # the type offset was found for
    cdef Py_ssize_t offset  # -1: not a slot of cls

    def __cinit__(self, str name):
        self.name = name
        self.offset = -1

    cdef inline object read(self, object instance):
        cdef PyObject *value
        if type(instance) is not self.cls:
            self.cls = type(instance)
            self.offset = _slot_offset(self.cls, self.name)
        if self.offset >= 0:
            value = (<PyObject **>((<char *><PyObject *>instance) + self.offset))[0]
            if value != NULL:
                return <object>value
        return getattr(instance, self.name)  # and AttributeError for an empty slot


# json's short escapes of control characters ("\\n"); the others become \\u00XX.
cdef char _SHORT_ESCAPES[32]
memset(_SHORT_ESCAPES, 0, 32)
_SHORT_ESCAPES[8] = b'b'
_SHORT_ESCAPES[9] = b't'
_SHORT_ESCAPES[10] = b'n'
_SHORT_ESCAPES[12] = b'f'
_SHORT_ESCAPES[13] = b'r'


cdef class _TextBuffer:
    cdef char *data
    cdef size_t length
    cdef size_t capacity

    def __dealloc__(self):
        free(self.data)

    cdef int reserve(self, size_t extra) except -1:
        cdef size_t capacity = self.capacity or 4096
        cdef char *grown
        if self.length + extra <= self.capacity:
            return 0
        while capacity < self.length + extra:
            capacity *= 2
        grown = <char *>realloc(self.data, capacity)
        if grown == NULL:
            raise MemoryError()
        self.data = grown
        self.capacity = capacity
        return 0

    cdef int add(self, const char *text, size_t n) except -1:
        self.reserve(n)
        memcpy(self.data + self.length, text, n)
        self.length += n
        return 0

    cdef int add_string(self, str value) except -1:
        """value as a JSON string, escaped as json.dumps(ensure_ascii=False) does."""
        cdef bytes encoded = value.encode("utf-8", "surrogatepass")
        cdef const unsigned char *p = encoded
        cdef Py_ssize_t i, n = len(encoded)
        cdef char escape[8]
        self.reserve(2 + 6 * n)
        self.data[self.length] = b'"'
        self.length += 1
        for i in range(n):
            if p[i] == b'"' or p[i] == b'\\':
                self.data[self.length] = b'\\'
                self.data[self.length + 1] = p[i]
                self.length += 2
            elif p[i] < 0x20:
                if _SHORT_ESCAPES[p[i]]:
                    self.data[self.length] = b'\\'
                    self.data[self.length + 1] = _SHORT_ESCAPES[p[i]]
                    self.length += 2
                else:
                    snprintf(escape, sizeof(escape), "\\u%04x", p[i])
                    memcpy(self.data + self.length, escape, 6)
                    self.length += 6
            else:
                self.data[self.length] = p[i]
                self.length += 1
        self.data[self.length] = b'"'
        self.length += 1
        return 0

    cdef int add_int(self, object value) except -1:
        """An int in decimal (by hand: snprintf took a sixth of the writer's time)."""
        cdef int overflow = 0
        cdef long long n = PyLong_AsLongLongAndOverflow(value, &overflow)
        cdef unsigned long long magnitude
        cdef char digits[24]
        cdef int start = 24
        if overflow:  # beyond 64 bits (a counter near 2**64): Python's own digits
            text = repr(value).encode("ascii")
            return self.add(text, len(text))
        magnitude = <unsigned long long>(-(n + 1)) + 1 if n < 0 else <unsigned long long>n
        while True:
            start -= 1
            digits[start] = <char>(48 + magnitude % 10)  # '0' + digit
            magnitude //= 10
            if magnitude == 0:
                break
        if n < 0:
            start -= 1
            digits[start] = b'-'
        return self.add(digits + start, 24 - start)

    cdef int add_value(self, object value) except -1:
        cdef char *text
        if value is None:
            self.add("null", 4)
        elif value is True:
            self.add("true", 4)
        elif value is False:
            self.add("false", 5)
        elif type(value) is int:
            self.add_int(value)
        elif type(value) is float:
            if not isfinite(<double>value):
                raise ValueError(f"{value} has no JSON form")
            # Python's repr of a float, as json.dumps writes it.
            text = PyOS_double_to_string(value, b'r', 0, Py_DTSF_ADD_DOT_0, NULL)
            try:
                self.add(text, strlen(text))
            finally:
                PyMem_Free(text)
        elif type(value) is str:
            self.add_string(value)
        else:
            raise TypeError(f"cannot write {type(value).__name__} as JSON")
        return 0


def json_objects(instances, tuple fields):
    """The JSON text of an array with one object per instance.

    fields: (key, attribute, sub-attribute or None) triples, giving
    ``{key: instance.attribute}`` or ``{key: instance.attribute.sub_attribute}``
    (null when the attribute is None).  Values: None, bool, int, float, str.
    The text equals json.dumps(..., separators=(",", ":"), ensure_ascii=False)
    of the same dicts.
    """
    cdef _TextBuffer out = _TextBuffer()
    cdef list keys = [], attributes = [], sub_attributes = []
    cdef Py_ssize_t i, nfields = len(fields)
    cdef bint first = True
    for key, attribute, sub_attribute in fields:
        out.length = 0
        out.add_string(key)
        keys.append((<char *>out.data)[:out.length] + b":")
        attributes.append(_AttributeReader(attribute))
        sub_attributes.append(None if sub_attribute is None else _AttributeReader(sub_attribute))
    out.length = 0
    out.add("[", 1)
    for instance in instances:
        out.add("{" if first else ",{", 1 if first else 2)
        first = False
        for i in range(nfields):
            key_text = <bytes>keys[i]
            if i:
                out.add(",", 1)
            out.add(key_text, len(key_text))
            value = (<_AttributeReader>attributes[i]).read(instance)
            sub_attribute = sub_attributes[i]
            if sub_attribute is not None and value is not None:
                value = (<_AttributeReader>sub_attribute).read(value)
            out.add_value(value)
        out.add("}", 1)
    out.add("]", 1)
    return out.data[:out.length].decode("utf-8", "surrogatepass")
