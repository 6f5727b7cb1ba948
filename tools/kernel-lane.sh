#!/usr/bin/env bash
# kernel-lane.sh KERNEL -- COMMAND [ARG...]
#
# Runs COMMAND as root under another Linux kernel: a throwaway QEMU guest
# that sees this machine's root filesystem read-only under a tmpfs overlay
# (the guest may write anywhere; its writes vanish), in the same working
# directory and environment, with no network device (its own loopback only).
#
# KERNEL  a Debian series (6.1, 6.12: the newest linux-image of that series
#         the configured apt sources hold, fetched with `apt-get download`,
#         never installed), a package's release (6.1.0-57-amd64), or the
#         path of a vmlinuz whose modules are in ../lib/modules/RELEASE.
#
# COMMAND's output (stdout and stderr together) is streamed here; its exit
# status is this script's.  124: the guest ran out of time.  125: the guest
# could not run COMMAND (no QEMU, no kernel, no boot): the reason and the
# end of the guest's console log go to stderr.  Never a silent pass.
#
# Without hardware virtualisation QEMU emulates the CPU: a boot takes
# seconds, CPU-bound work about 20 times longer than on the host.
#
# Environment: KERNEL_LANE_CACHE (default ~/.cache/kernel-lane),
# KERNEL_LANE_TIMEOUT (seconds, default 1500), KERNEL_LANE_MEM (MiB, 1536),
# KERNEL_LANE_CPUS (default: the host's cores, at most 4).
set -uo pipefail

ME=kernel-lane
fail() { echo "$ME: $*" >&2; exit 125; }
say() { echo "$ME: $*" >&2; }

[ $# -ge 3 ] && [ "$2" = -- ] || { echo "usage: $0 KERNEL -- COMMAND [ARG...]" >&2; exit 2; }
KERNEL=$1; shift 2
[ "$(id -u)" = 0 ] || fail "needs root (QEMU's 9p export of / and apt-get)"

CACHE=${KERNEL_LANE_CACHE:-$HOME/.cache/kernel-lane}
TIMEOUT=${KERNEL_LANE_TIMEOUT:-1500}
MEM=${KERNEL_LANE_MEM:-1536}
CORES=$(nproc)
CPUS=${KERNEL_LANE_CPUS:-$(( CORES < 4 ? CORES : 4 ))}
mkdir -p "$CACHE" || fail "cannot create $CACHE"

# --- host packages ---------------------------------------------------------------
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 && return
    apt-get update -qq >/dev/null 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || fail "apt-get install $* failed"
}
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v modprobe >/dev/null || missing+=(kmod)
command -v cpio >/dev/null || missing+=(cpio)
command -v xz >/dev/null || missing+=(xz-utils)
command -v zstd >/dev/null || missing+=(zstd)
# The initramfs needs a busybox that runs without the host's libraries.
if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then missing+=(busybox-static); fi
[ ${#missing[@]} = 0 ] || { say "installing ${missing[*]}"; apt_install "${missing[@]}"; }
! ldd /bin/busybox >/dev/null 2>&1 || fail "/bin/busybox is not static"

# --- the kernel: VMLINUZ, RELEASE, MODULES (its /lib/modules/RELEASE) -------------
newest_package() {   # the newest linux-image-SERIES.*-amd64 apt knows (no cloud/rt flavour)
    local series=${1//./\\.}
    apt-cache pkgnames linux-image- 2>/dev/null \
        | grep -E "^linux-image-${series}[.-][0-9][^ ]*-amd64$" | grep -vE -- '-(cloud|rt)-amd64$' | sort -V | tail -1
}
fetch_package() {   # unpack package $1 under $CACHE/$1 (once)
    local pkg=$1 dir=$CACHE/$1
    [ -d "$dir/boot" ] && return 0
    rm -rf "$dir.part" && mkdir -p "$dir.part" || return 1
    say "downloading $pkg"
    (cd "$dir.part" && { apt-get download -qq "$pkg" >/dev/null 2>&1 \
        || { apt-get update -qq >/dev/null 2>&1 && apt-get download -qq "$pkg" >/dev/null; }; }) || return 1
    dpkg-deb -x "$dir.part"/*.deb "$dir.part" && rm -f "$dir.part"/*.deb && mv "$dir.part" "$dir"
}
if [ -f "$KERNEL" ]; then
    VMLINUZ=$(readlink -f "$KERNEL")
    RELEASE=$(basename "$VMLINUZ"); RELEASE=${RELEASE#vmlinuz-}
    ROOT=$(dirname "$(dirname "$VMLINUZ")")
else
    case "$KERNEL" in
        *-amd64) PACKAGE=linux-image-$KERNEL ;;
        *) PACKAGE=$(newest_package "$KERNEL")
           if [ -z "$PACKAGE" ]; then
               apt-get update -qq >/dev/null 2>&1
               PACKAGE=$(newest_package "$KERNEL")
           fi ;;
    esac
    [ -n "$PACKAGE" ] || fail "no Debian kernel package of the $KERNEL series in the apt sources"
    exec 8>"$CACHE/.lock"; flock 8
    fetch_package "$PACKAGE" || fail "cannot download $PACKAGE"
    flock -u 8
    ROOT=$CACHE/$PACKAGE
    VMLINUZ=$(ls "$ROOT"/boot/vmlinuz-* | head -1)
    RELEASE=${VMLINUZ##*/vmlinuz-}
fi
MODULES=
for candidate in "$ROOT/lib/modules/$RELEASE" "$ROOT/usr/lib/modules/$RELEASE" "/lib/modules/$RELEASE"; do
    [ -d "$candidate" ] && { MODULES=$candidate; break; }
done
[ -n "$MODULES" ] || fail "no modules for $RELEASE (looked beside $VMLINUZ and in /lib/modules)"
MODULES_BASE=${MODULES%/lib/modules/$RELEASE}
# Debian's packages leave modules.dep to their postinst.
[ -s "$MODULES/modules.dep" ] || depmod -b "$MODULES_BASE" "$RELEASE" || fail "depmod $RELEASE failed"

# --- the initramfs: busybox, the modules that reach the host's files, /init --------
BOOT_MODULES="virtio_pci virtio_console 9pnet_virtio 9p overlay"
read -r -d '' INIT <<'EOF'
#!/bin/busybox sh
# First stage: mount the host's / (9p, read-only) under a tmpfs overlay and
# the lane directory (9p, read-write) at its host path, then run the second
# stage from the host's files.
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs dev /dev
stop() { echo "kernel-lane init: $*" > /dev/ttyS0; poweroff -f; }
for module in $(cat /modules/order); do insmod "/modules/$module" || stop "insmod $module failed"; done
NINEP=trans=virtio,version=9p2000.L,msize=262144
mkdir -p /host /lane /rw /root
mount -t 9p -o "$NINEP,ro,cache=loose" host /host || stop "cannot mount the host's /"
mount -t 9p -o "$NINEP,cache=none" lane /lane || stop "cannot mount the lane directory"
mount -t tmpfs -o mode=0755 rw /rw && mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work root /root || stop "overlay failed"
mkdir -p "/root$lanedir" && mount --move /lane "/root$lanedir" || stop "cannot place $lanedir"
for fs in proc sys dev; do mount --move /$fs /root/$fs; done
exec switch_root /root /bin/bash "$lanedir/guest.sh"
EOF
INITRAMFS=$CACHE/initramfs-$RELEASE-$( { echo "$INIT$BOOT_MODULES"; md5sum </bin/busybox; } | md5sum | cut -c1-10).cpio.gz
if [ ! -s "$INITRAMFS" ]; then
    tree=$(mktemp -d "$CACHE/initramfs.XXXXXX") || fail "mktemp failed"
    mkdir -p "$tree"/{bin,modules,proc,sys,dev}
    cp /bin/busybox "$tree/bin/busybox"
    printf '%s\n' "$INIT" > "$tree/init" && chmod 755 "$tree/init"
    # modprobe lists each module after those it needs ("builtin NAME" for built-in ones).
    for module in $BOOT_MODULES; do   # one each: further names would be taken as parameters
        modprobe -d "$MODULES_BASE" -S "$RELEASE" --show-depends "$module" 2>/dev/null
    done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }' > "$tree/paths"
    [ -s "$tree/paths" ] || say "note: $RELEASE has every boot module built in (or modprobe found none)"
    while read -r path; do
        name=$(basename "$path"); name=${name%.xz}; name=${name%.zst}; name=${name%.gz}
        case "$path" in
            *.xz) xz -dc "$path" ;; *.zst) zstd -qdc "$path" ;; *.gz) gzip -dc "$path" ;; *) cat "$path" ;;
        esac > "$tree/modules/$name" || fail "cannot unpack $path"
        echo "$name" >> "$tree/modules/order"
    done < "$tree/paths"
    touch "$tree/modules/order"
    (cd "$tree" && find . ! -name paths | cpio -o -H newc --quiet | gzip -1) > "$tree.cpio.gz" \
        && mv "$tree.cpio.gz" "$INITRAMFS" || fail "cannot write the initramfs"
    rm -rf "$tree"
fi

# --- the run -------------------------------------------------------------------------
LANE=$(mktemp -d "$CACHE/run.XXXXXX") || fail "mktemp failed"
QEMU_PID=
finish() { [ -n "$QEMU_PID" ] && kill "$QEMU_PID" 2>/dev/null; [ -n "${TAIL_PID:-}" ] && kill "$TAIL_PID" 2>/dev/null; rm -rf "$LANE"; }
trap finish EXIT
trap 'exit 130' INT TERM

{ printf 'cd %q || exit 125\nexec' "$PWD"; printf ' %q' "$@"; echo; } > "$LANE/command"
for name in $(compgen -e); do
    case "$name" in PWD|OLDPWD|SHLVL|_|HOSTNAME|TERM|TMUX*|SSH_*|DISPLAY) continue ;; esac
    printf 'export %s=%q\n' "$name" "${!name}"
done > "$LANE/env"
cat > "$LANE/guest.sh" <<'EOF'
# Second stage, PID 1 in the guest, from the host's bash: the mounts a root
# session expects, then COMMAND, its status written back, power off.
LANE=$(dirname "$0")
exec </dev/null >/dev/ttyS0 2>&1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
for spec in devpts:/dev/pts tmpfs:/dev/shm tmpfs:/run tmpfs:/tmp cgroup2:/sys/fs/cgroup \
            tracefs:/sys/kernel/tracing debugfs:/sys/kernel/debug bpf:/sys/fs/bpf; do
    mkdir -p "${spec#*:}"; mount -t "${spec%%:*}" none "${spec#*:}" || echo "kernel-lane: no ${spec%%:*}"
done
chmod 1777 /tmp /dev/shm
ln -sfn /proc/self/fd /dev/fd
[ -e /dev/ptmx ] || ln -s pts/ptmx /dev/ptmx
mkdir -p "/lib/modules/$(uname -r)" && mount --bind "$(cat "$LANE/modules")" "/lib/modules/$(uname -r)"
hostname kernel-lane
ip link set lo up
set -a; . "$LANE/env"; set +a
OUT=$(for port in /sys/class/virtio-ports/*; do
          [ "$(cat "$port/name" 2>/dev/null)" = lane.out ] && echo "/dev/${port##*/}"; done)
echo "kernel-lane: $(uname -r) up after $(cut -d' ' -f1 /proc/uptime) s"
bash "$LANE/command" > "${OUT:-$LANE/out}" 2>&1
echo $? > "$LANE/status"
sync
poweroff -f
EOF
echo "$MODULES" > "$LANE/modules"

if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then ACCEL=(-accel kvm -cpu host)
else ACCEL=(-accel tcg,thread=multi -cpu max); fi
: > "$LANE/out"
started=$(date +%s)
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot \
    -machine q35 "${ACCEL[@]}" -m "$MEM" -smp "$CPUS" \
    -kernel "$VMLINUZ" -initrd "$INITRAMFS" \
    -append "console=ttyS0 loglevel=4 panic=-1 mitigations=off lanedir=$LANE" \
    -serial "file:$LANE/console" \
    -fsdev "local,id=host,path=/,readonly=on,security_model=none,multidevs=remap" \
    -device virtio-9p-pci,fsdev=host,mount_tag=host \
    -fsdev "local,id=lane,path=$LANE,security_model=none,multidevs=remap" \
    -device virtio-9p-pci,fsdev=lane,mount_tag=lane \
    -device virtio-serial-pci -chardev "file,id=out,path=$LANE/out,append=on" \
    -device virtserialport,chardev=out,name=lane.out \
    -device virtio-rng-pci -nic none </dev/null > "$LANE/qemu" 2>&1 &
QEMU_PID=$!
# Streams COMMAND's output; ends once QEMU has, after a last read.
tail -f -n +1 --pid="$QEMU_PID" "$LANE/out" & TAIL_PID=$!
wait "$QEMU_PID"; qemu_status=$?; QEMU_PID=
wait "$TAIL_PID"; TAIL_PID=
took=$(( $(date +%s) - started ))

if [ -s "$LANE/status" ]; then
    status=$(cat "$LANE/status")
    say "$RELEASE (${ACCEL[1]}): exit status $status after $took s"
    exit "$status"
fi
if [ "$qemu_status" = 124 ] || [ "$qemu_status" = 137 ]; then
    say "$RELEASE: no result after $TIMEOUT s (timeout)"; status=124
else
    say "$RELEASE: the guest did not run the command (qemu exit status $qemu_status)"; status=125
fi
say "--- the guest's console, last 40 lines ---"
tail -n 40 "$LANE/console" | tr -d '\r' >&2
[ -s "$LANE/qemu" ] && { say "--- qemu ---"; cat "$LANE/qemu" >&2; }
exit "$status"
