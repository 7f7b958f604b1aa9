# Helpers shared by the skytime image's first-boot and hat-detection scripts.
# shellcheck shell=bash

firmware=${SKYTIME_FIRMWARE_DIR:-/boot/firmware}
state_dir=${SKYTIME_IMAGE_STATE:-/var/lib/skytime-image}
config=${SKYTIME_CONFIG:-/etc/skytime/skytime.toml}
hardware_dir=${SKYTIME_HARDWARE_DIR:-/usr/share/doc/skytime/hardware}
mkdir -p "$state_dir"

# One line to the journal (stdout of the unit) and to the report that first
# boot leaves on the FAT partition, where the user can read it from any
# computer.
say() {
    echo "$*"
    echo "$(date -u +%FT%TZ) $*" >> "$state_dir/report.txt"
}

# Writes stdin to $1 so that a power cut leaves either the old file or the
# new one, never half of one: a temporary file in the same directory, synced,
# renamed over the old one, and the directory synced. $2 is the mode.
write_atomically() {
    local path=$1 mode=${2:-0644} tmp
    tmp=$(mktemp "$path.XXXXXX")
    cat > "$tmp"
    chmod "$mode" "$tmp"
    sync "$tmp"
    mv -f "$tmp" "$path"
    sync "$(dirname "$path")"
}

# Installs a skytime config ($1) as the live one if skytimed accepts it;
# prints skytimed's complaints otherwise and keeps the live one.
install_config() {
    local candidate=$1 owner
    if ! errors=$(skytimed --check-config "$candidate" 2>&1); then
        say "config $candidate rejected, keeping $config: $(echo "$errors" | tr '\n' ' ')"
        return 1
    fi
    owner=$(stat -c %U:%G "$config" 2>/dev/null || echo root:skytime)
    write_atomically "$config" 0640 < "$candidate"
    chown "$owner" "$config" 2>/dev/null || true
}

# Copies the report to the FAT partition (best effort: it may be read-only).
publish_report() {
    if [[ -d $firmware && -w $firmware ]]; then
        cp "$state_dir/report.txt" "$firmware/skytime-firstboot.txt" 2>/dev/null && sync "$firmware" || true
    fi
}
