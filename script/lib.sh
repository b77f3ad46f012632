# Shared by script/demo and script/test. Sourced, not run.
set -euo pipefail

REQUIRED_RUST="1.95"

log() { printf '\033[1m[kazashi]\033[0m %s\n' "$*" >&2; }

# Run as root, or through sudo when not root.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root to run: $*  (run as root, or install sudo)"; return 1
    fi
}

# Install the Debian packages named, skipping those already installed (idempotent, and no
# network use when nothing is missing).
apt_install() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then return 0; fi
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Rust is not taken from Debian (bookworm's is too old); it must be there already.
need_rust() {
    if [ -f "$HOME/.cargo/env" ]; then . "$HOME/.cargo/env"; fi
    if ! command -v cargo >/dev/null; then
        log "Rust $REQUIRED_RUST or newer is needed: install it with rustup (https://rustup.rs), then run this again."
        exit 1
    fi
    local have
    have=$(rustc --version | awk '{print $2}')
    if [ "$(printf '%s\n%s\n' "$REQUIRED_RUST" "$have" | sort -V | head -n1)" != "$REQUIRED_RUST" ]; then
        log "Rust $have is too old; $REQUIRED_RUST or newer is needed (rustup update)."
        exit 1
    fi
}

# What building needs.
# libssl-dev: SQLCipher (bundled by rusqlite) links OpenSSL's libcrypto for the store's encryption.
# libpcsclite-dev: the card reader client library (PC/SC) the `pcsc` crate links.
# fonts-ipaexfont-gothic: the Japanese font the window loads (and its tests, which fail on a
# missing glyph).
# What the window needs at run time on X11 or Wayland (a desktop has them already).
WINDOW_PACKAGES=(libgl1 libegl1 libwayland-egl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6)
BUILD_PACKAGES=(build-essential pkg-config ca-certificates libssl-dev libpcsclite-dev fonts-ipaexfont-gothic)
# The partition test builds network namespaces with `ip` (iproute2). The card tests run a real
# pcscd with vsmartcard's virtual reader (vpcd) and the in-repo card emulator; pcsc-tools
# (pcsc_scan) is there to look at the rig by hand. The window's smoke test runs the real
# window under Xvfb with Mesa's software OpenGL (xvfb, xauth, libgl1-mesa-dri, libegl1); the
# printed 宣誓書 is read back with pdftotext (poppler-utils). The chaos test impairs links with
# tc (iproute2) netem, or with nft (nftables) where the kernel has no netem. The input-method
# test (sim/tests/window_ime.rs, images/ime-test) types a name with Mozc into the real window
# under the appliance's kiosk compositor, headless: sway, fcitx5, fcitx5-mozc, wtype, grim.
TEST_PACKAGES=(iproute2 nftables pcscd vsmartcard-vpcd pcsc-tools xvfb xauth libgl1-mesa-dri libegl1 libwayland-egl1 poppler-utils libxml2-utils strace sway fcitx5 fcitx5-mozc wtype grim)
# script/fuzz: libfuzzer-sys compiles libFuzzer (C++) with build-essential's g++; nothing else
# (the fuzzer is a crate, built on stable Rust).
FUZZ_PACKAGES=(build-essential)
# images/setup: the appliance image (issue 29) — mkosi 14 and what it calls (debootstrap,
# systemd-nspawn, sfdisk, mkfs, GRUB for BIOS), QEMU with UEFI firmware for images/test.
IMAGE_PACKAGES=(mkosi debootstrap systemd-container dosfstools mtools e2fsprogs fdisk grub-pc-bin grub-efi-amd64-bin qemu-system-x86 qemu-utils ovmf python3)
