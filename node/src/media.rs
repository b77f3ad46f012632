//! Removable media (USB sticks) as people handle them: found when inserted, by reading the
//! mount table and the kernel's `removable` flag, plus the mount points a desktop's automounter
//! (udisks2) makes under `/media/<user>/` and `/run/media/<user>/`. The parsing is pure (the
//! file contents come in as strings, so it is tested with fixtures); [`removable_media`] is the
//! thin reader of the live system. Nothing here panics on what the files hold.

use std::path::{Path, PathBuf};

/// One mounted removable medium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Medium {
    /// What people call it: the last part of the mount point (the volume label, e.g. `STICK`).
    pub label: String,
    /// Where it is mounted.
    pub mount: PathBuf,
    /// The block device (`/dev/sdb1`), when the mount names one.
    pub device: String,
    /// The filesystem type (`vfat`, `exfat`, …).
    pub fstype: String,
}

impl Medium {
    /// The folder Kazashi keeps its bundles in on this medium.
    pub fn kazashi_dir(&self) -> PathBuf {
        self.mount.join("kazashi")
    }
}

/// One line of a mount table: device, mount point, filesystem type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountLine {
    pub device: String,
    pub mount: PathBuf,
    pub fstype: String,
}

/// Undo the octal escapes of the mount table (`\040` is a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\'
            && let Some(oct) = b.get(i + 1..i + 4)
            && oct.iter().all(|c| (b'0'..=b'7').contains(c))
            && let Ok(v) = u8::try_from(
                oct.iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0')),
            )
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(c);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The lines of `/proc/self/mounts` (or `/proc/mounts`); malformed lines are skipped.
pub fn parse_mounts(text: &str) -> Vec<MountLine> {
    text.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let device = unescape(f.next()?);
            let mount = PathBuf::from(unescape(f.next()?));
            let fstype = f.next()?.to_string();
            Some(MountLine {
                device,
                mount,
                fstype,
            })
        })
        .collect()
}

/// The kernel's block device name for a device path: `/dev/sdb1` → `sdb1`.
fn block_name(device: &str) -> Option<&str> {
    let name = device.strip_prefix("/dev/")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// The whole-disk device of a partition: `sdb1` → `sdb`, `mmcblk0p1` → `mmcblk0`,
/// `nvme0n1p2` → `nvme0n1`; a whole disk is its own parent.
pub fn parent_disk(name: &str) -> &str {
    let trimmed = name.trim_end_matches(|c: char| c.is_ascii_digit());
    if trimmed.len() == name.len() {
        return name;
    }
    // `mmcblk0p1`, `nvme0n1p2`: the partition number follows a `p` after a digit.
    if let Some(base) = trimmed.strip_suffix('p')
        && base.ends_with(|c: char| c.is_ascii_digit())
    {
        return base;
    }
    // `mmcblk0`, `nvme0n1`, `loop0`: a trailing number that is part of the disk's name.
    if trimmed.ends_with(|c: char| c.is_ascii_alphabetic())
        && (trimmed.starts_with("mmcblk") || trimmed.starts_with("nvme"))
    {
        return name;
    }
    trimmed
}

/// Whether a mount point is where an automounter puts removable media.
fn under_media(mount: &Path, user: &str) -> bool {
    let roots: [PathBuf; 2] = [
        Path::new("/media").join(user),
        Path::new("/run/media").join(user),
    ];
    roots
        .iter()
        .any(|r| !user.is_empty() && mount.parent() == Some(r.as_path()))
}

/// The removable media among the mount lines. `removable` answers the kernel's flag for a
/// block name (`sdb` → `Some(true)`), `None` when there is no such disk (a partition: its
/// whole disk is asked next). A medium counts when its disk is
/// flagged removable, or it is mounted under `/media/<user>/` or `/run/media/<user>/`; optical
/// discs (`iso9660`, `udf`: read-only) and pseudo filesystems are left out.
pub fn removable_from(
    mounts: &[MountLine],
    user: &str,
    removable: impl Fn(&str) -> Option<bool>,
) -> Vec<Medium> {
    let mut out: Vec<Medium> = Vec::new();
    for m in mounts {
        if matches!(m.fstype.as_str(), "iso9660" | "udf") {
            continue;
        }
        let flagged = block_name(&m.device)
            .and_then(|n| removable(n).or_else(|| removable(parent_disk(n))))
            .unwrap_or(false);
        let is_block = block_name(&m.device).is_some();
        if !(is_block && (flagged || under_media(&m.mount, user))) {
            continue;
        }
        if out.iter().any(|o| o.mount == m.mount) {
            continue;
        }
        let label = m
            .mount
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| m.mount.display().to_string());
        out.push(Medium {
            label,
            mount: m.mount.clone(),
            device: m.device.clone(),
            fstype: m.fstype.clone(),
        });
    }
    out
}

/// The removable media mounted on this machine now: `/proc/self/mounts` and
/// `/sys/block/<disk>/removable`. An unreadable mount table gives an empty list.
pub fn removable_media() -> Vec<Medium> {
    let text = std::fs::read_to_string("/proc/self/mounts")
        .or_else(|_| std::fs::read_to_string("/proc/mounts"))
        .unwrap_or_default();
    let user = std::env::var("USER").unwrap_or_default();
    removable_from(&parse_mounts(&text), &user, |disk| {
        let flag =
            std::fs::read_to_string(Path::new("/sys/block").join(disk).join("removable")).ok()?;
        Some(flag.trim() == "1")
    })
}

/// The `*.kzb` bundle files in a folder, sorted by name; a missing folder gives none.
pub fn bundles_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "kzb"))
        .collect();
    v.sort();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
/dev/nvme0n1p2 / ext4 rw,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev,size=1611244k,mode=755 0 0
/dev/nvme0n1p1 /boot/efi vfat rw,relatime 0 0
/dev/sdb1 /media/kazashi/STICK vfat rw,nosuid,nodev,relatime,uid=1000 0 0
/dev/sr0 /media/kazashi/CDROM iso9660 ro,nosuid,nodev 0 0
/dev/sdc1 /run/media/kazashi/MY\\040DATA exfat rw,nosuid,nodev 0 0
garbage
";

    fn flags(disk: &str) -> Option<bool> {
        match disk {
            "sdb" | "sr0" => Some(true),
            "nvme0n1" | "sdc" => Some(false),
            _ => None,
        }
    }

    #[test]
    fn the_mount_table_is_parsed_and_escapes_undone() {
        let m = parse_mounts(MOUNTS);
        assert_eq!(m.len(), 7, "the garbage line is skipped");
        assert_eq!(m[4].device, "/dev/sdb1");
        assert_eq!(m[4].mount, PathBuf::from("/media/kazashi/STICK"));
        assert_eq!(m[6].mount, PathBuf::from("/run/media/kazashi/MY DATA"));
    }

    #[test]
    fn partitions_have_their_disks() {
        assert_eq!(parent_disk("sdb1"), "sdb");
        assert_eq!(parent_disk("sdb"), "sdb");
        assert_eq!(parent_disk("mmcblk0p1"), "mmcblk0");
        assert_eq!(parent_disk("nvme0n1p2"), "nvme0n1");
        assert_eq!(parent_disk("nvme0n1"), "nvme0n1");
    }

    #[test]
    fn only_the_stick_and_the_automounted_disk_are_removable_media() {
        let found = removable_from(&parse_mounts(MOUNTS), "kazashi", flags);
        let mounts: Vec<_> = found.iter().map(|m| m.mount.clone()).collect();
        assert_eq!(
            mounts,
            vec![
                PathBuf::from("/media/kazashi/STICK"),
                PathBuf::from("/run/media/kazashi/MY DATA"),
            ],
            "not the root disk, the EFI partition, tmpfs, proc or the CD"
        );
        assert_eq!(found[0].label, "STICK");
        assert_eq!(found[0].fstype, "vfat");
        assert_eq!(
            found[0].kazashi_dir(),
            PathBuf::from("/media/kazashi/STICK/kazashi")
        );
        assert_eq!(found[1].label, "MY DATA");
    }

    #[test]
    fn a_stick_mounted_elsewhere_counts_by_the_kernel_flag_alone() {
        let text = "/dev/sdb1 /mnt/usb vfat rw 0 0\n/dev/sda1 /mnt/data ext4 rw 0 0\n";
        let found = removable_from(&parse_mounts(text), "", |d| match d {
            "sdb" => Some(true),
            "sda" => Some(false),
            _ => None,
        });
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].mount, PathBuf::from("/mnt/usb"));
    }

    #[test]
    fn bundles_in_a_folder_are_the_kzb_files() {
        let dir = std::env::temp_dir().join(format!("kazashi-media-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b.kzb"), b"x").unwrap();
        std::fs::write(dir.join("a.kzb"), b"x").unwrap();
        std::fs::write(dir.join("notes.txt"), b"x").unwrap();
        let found = bundles_in(&dir);
        assert_eq!(found, vec![dir.join("a.kzb"), dir.join("b.kzb")]);
        assert!(bundles_in(&dir.join("missing")).is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
