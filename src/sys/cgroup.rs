//! The CPU quota of this process's control group, for `workers = 0`: under
//! systemd's `CPUQuota=` or a container's `--cpus`, the affinity mask still shows
//! every CPU, and one worker per CPU would oversubscribe the time the group gets.
//!
//! cgroup v2 keeps the quota in `cpu.max` ("150000 100000", or "max 100000" for
//! none); cgroup v1 (CentOS 7) in `cpu.cfs_quota_us` ("-1" for none) over
//! `cpu.cfs_period_us` of the `cpu` controller. A parent's quota caps its
//! children, so every level up to the hierarchy's mount point counts. Where the
//! groups are mounted comes from /proc/self/mountinfo (containers mount a group
//! at the hierarchy's root). A file that is missing or reads as anything else
//! than a quota means "no quota" here, never an error.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// The CPUs the quota allows, rounded up (under a quota of 1.5 CPUs, 2 workers
/// get 75% of a CPU each: more work done than by 1); None when no group of ours
/// has a quota.
pub fn cpu_quota_limit() -> Option<usize> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    [Hierarchy::V2, Hierarchy::V1Cpu]
        .into_iter()
        .filter_map(|hierarchy| limit_in(hierarchy, &groups, &mounts))
        .min()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hierarchy {
    /// The unified hierarchy (cgroup2).
    V2,
    /// The cgroup v1 hierarchy that holds the `cpu` controller.
    V1Cpu,
}

/// The smallest quota of our group and its parents in one hierarchy.
fn limit_in(hierarchy: Hierarchy, groups: &str, mounts: &str) -> Option<usize> {
    let group = group_path(groups, hierarchy)?;
    let (mount_root, mount_point) = mount_of(mounts, hierarchy)?;
    let top = Path::new(mount_point);
    let dir = group_dir(top, mount_root, group);
    dir.ancestors()
        .take_while(|level| level.starts_with(top))
        .filter_map(|level| quota_at(hierarchy, level))
        .min()
}

/// Our group in `hierarchy`, from /proc/self/cgroup: "0::/system.slice/x" (v2),
/// "4:cpu,cpuacct:/docker/ab12" (v1).
fn group_path(proc_self_cgroup: &str, hierarchy: Hierarchy) -> Option<&str> {
    proc_self_cgroup.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_id, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let wanted = match hierarchy {
            Hierarchy::V2 => controllers.is_empty(),
            Hierarchy::V1Cpu => controllers.split(',').any(|c| c == "cpu"),
        };
        wanted.then_some(path)
    })
}

/// (the group shown at the mount's root, the mount point) of `hierarchy`, from
/// /proc/self/mountinfo lines such as
/// "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct".
fn mount_of(mountinfo: &str, hierarchy: Hierarchy) -> Option<(&str, &str)> {
    mountinfo.lines().find_map(|line| {
        let (mount, filesystem) = line.split_once(" - ")?;
        let mut mount = mount.split(' ').skip(3);
        let (root, point) = (mount.next()?, mount.next()?);
        let mut filesystem = filesystem.split(' ');
        let (fstype, _source, options) =
            (filesystem.next()?, filesystem.next()?, filesystem.next()?);
        let wanted = match hierarchy {
            Hierarchy::V2 => fstype == "cgroup2",
            Hierarchy::V1Cpu => fstype == "cgroup" && options.split(',').any(|o| o == "cpu"),
        };
        wanted.then_some((root, point))
    })
}

/// The directory of `group` under a mount of its hierarchy that shows
/// `mount_root` at `mount_point`. A group outside what the mount shows (or a
/// path with "..") gives the mount point itself: the closest level we can see.
fn group_dir(mount_point: &Path, mount_root: &str, group: &str) -> PathBuf {
    let below_root = Path::new(group)
        .strip_prefix(mount_root)
        .ok()
        .filter(|rest| rest.components().all(|c| matches!(c, Component::Normal(_))));
    match below_root {
        Some(rest) => mount_point.join(rest),
        None => mount_point.to_path_buf(),
    }
}

/// The quota set on one group directory, if any.
fn quota_at(hierarchy: Hierarchy, dir: &Path) -> Option<usize> {
    let mut buffers = ([0; 64], [0; 64]);
    match hierarchy {
        Hierarchy::V2 => v2_limit(read_short(&dir.join("cpu.max"), &mut buffers.0)?),
        Hierarchy::V1Cpu => v1_limit(
            read_short(&dir.join("cpu.cfs_quota_us"), &mut buffers.0)?,
            read_short(&dir.join("cpu.cfs_period_us"), &mut buffers.1)?,
        ),
    }
}

/// The start of a small file (these hold one or two numbers).
fn read_short<'a>(path: &Path, buffer: &'a mut [u8]) -> Option<&'a str> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut len = 0;
    while len < buffer.len() {
        match file.read(&mut buffer[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    std::str::from_utf8(&buffer[..len]).ok()
}

/// cgroup v2 `cpu.max`: "<quota> <period>" in µs, "max <period>" without a quota.
fn v2_limit(cpu_max: &str) -> Option<usize> {
    let mut fields = cpu_max.split_ascii_whitespace();
    let (quota, period) = (fields.next()?, fields.next()?);
    cpus_for(quota.parse().ok()?, period.parse().ok()?)
}

/// cgroup v1: `cpu.cfs_quota_us` ("-1" without a quota) and `cpu.cfs_period_us`.
fn v1_limit(quota: &str, period: &str) -> Option<usize> {
    let quota: i64 = quota.trim().parse().ok()?;
    cpus_for(u64::try_from(quota).ok()?, period.trim().parse().ok()?)
}

/// ceil(quota / period), at least 1; None for a zero quota or period (not a
/// quota the kernel accepts).
fn cpus_for(quota_us: u64, period_us: u64) -> Option<usize> {
    if quota_us == 0 || period_us == 0 {
        return None;
    }
    Some(usize::try_from(quota_us.div_ceil(period_us)).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v2_cpu_max() {
        assert_eq!(v2_limit("max 100000\n"), None);
        assert_eq!(v2_limit("100000 100000\n"), Some(1));
        assert_eq!(v2_limit("150000 100000\n"), Some(2));
        assert_eq!(v2_limit("50000 100000"), Some(1));
        assert_eq!(v2_limit("400000 100000\n"), Some(4));
        assert_eq!(v2_limit("1 1000000\n"), Some(1));
        for odd in [
            "",
            "\n",
            "150000\n",
            "max\n",
            "-1 100000\n",
            "x y",
            "0 100000",
            "5 0",
        ] {
            assert_eq!(v2_limit(odd), None, "{odd:?}");
        }
    }

    #[test]
    fn v1_cfs_quota() {
        assert_eq!(v1_limit("-1\n", "100000\n"), None);
        assert_eq!(v1_limit("200000\n", "100000\n"), Some(2));
        assert_eq!(v1_limit("250000\n", "100000\n"), Some(3));
        assert_eq!(v1_limit("25000\n", "50000\n"), Some(1));
        for (quota, period) in [
            ("", "100000"),
            ("100000", ""),
            ("0", "100000"),
            ("1e5", "1"),
        ] {
            assert_eq!(v1_limit(quota, period), None, "{quota:?} {period:?}");
        }
        assert_eq!(
            v1_limit(&u64::MAX.to_string(), "1"),
            None,
            "larger than the kernel's i64"
        );
    }

    const CENTOS7_CGROUP: &str = "11:cpuset:/\n\
        10:memory:/system.slice/hashd.service\n\
        4:cpuacct,cpu:/system.slice/hashd.service\n\
        1:name=systemd:/system.slice/hashd.service\n";
    const CENTOS7_MOUNTINFO: &str = "\
        24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:6 - tmpfs tmpfs ro,mode=755\n\
        25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid shared:7 - cgroup cgroup rw,xattr,name=systemd\n\
        28 24 0:24 / /sys/fs/cgroup/cpuset rw,nosuid shared:10 - cgroup cgroup rw,cpuset\n\
        29 24 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpuacct,cpu\n";

    #[test]
    fn v1_centos7_service() {
        assert_eq!(
            group_path(CENTOS7_CGROUP, Hierarchy::V1Cpu),
            Some("/system.slice/hashd.service")
        );
        assert_eq!(group_path(CENTOS7_CGROUP, Hierarchy::V2), None);
        assert_eq!(
            mount_of(CENTOS7_MOUNTINFO, Hierarchy::V1Cpu),
            Some(("/", "/sys/fs/cgroup/cpu,cpuacct"))
        );
        assert_eq!(mount_of(CENTOS7_MOUNTINFO, Hierarchy::V2), None);
    }

    #[test]
    fn v2_systemd_and_hybrid() {
        let groups = "0::/system.slice/hashd.service\n";
        let mounts = "35 24 0:30 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(
            group_path(groups, Hierarchy::V2),
            Some("/system.slice/hashd.service")
        );
        assert_eq!(group_path(groups, Hierarchy::V1Cpu), None);
        assert_eq!(
            mount_of(mounts, Hierarchy::V2),
            Some(("/", "/sys/fs/cgroup"))
        );
        // A v1 "cpuacct" alone is not the cpu controller; the hybrid layout's
        // cgroup2 lives under "unified".
        let hybrid = "1:cpuacct:/\n0::/\n";
        let hybrid_mounts = "33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
        assert_eq!(group_path(hybrid, Hierarchy::V1Cpu), None);
        assert_eq!(mount_of(hybrid_mounts, Hierarchy::V1Cpu), None);
        assert_eq!(
            mount_of(hybrid_mounts, Hierarchy::V2),
            Some(("/", "/sys/fs/cgroup/unified"))
        );
    }

    #[test]
    fn group_directory_under_its_mount() {
        let top = Path::new("/sys/fs/cgroup/cpu,cpuacct");
        assert_eq!(
            group_dir(top, "/", "/system.slice/hashd.service"),
            top.join("system.slice/hashd.service")
        );
        // A container sees its own group at the mount's root.
        assert_eq!(group_dir(top, "/docker/ab12", "/docker/ab12"), top);
        assert_eq!(
            group_dir(top, "/docker/ab12", "/docker/ab12/sub"),
            top.join("sub")
        );
        // Outside what the mount shows, or climbing out of it: the mount point.
        assert_eq!(group_dir(top, "/docker/ab12", "/docker/ab123"), top);
        assert_eq!(group_dir(top, "/docker/ab12", "/"), top);
        assert_eq!(group_dir(top, "/", "/../../etc"), top);
    }

    #[test]
    fn malformed_files_are_no_quota() {
        for junk in ["", "\n", ":::\n", "garbage", "0::"] {
            assert_eq!(group_path(junk, Hierarchy::V1Cpu), None, "{junk:?}");
            assert_eq!(mount_of(junk, Hierarchy::V2), None, "{junk:?}");
            assert_eq!(mount_of(junk, Hierarchy::V1Cpu), None, "{junk:?}");
        }
        assert_eq!(group_path("0::", Hierarchy::V2), Some(""));
        assert_eq!(mount_of("1 2 3 / /x - cgroup2", Hierarchy::V2), None);
    }

    #[test]
    fn levels_walked_up_to_the_mount_point() {
        let dir = tempdir();
        let top = dir.join("cg");
        let leaf = top.join("slice/service");
        std::fs::create_dir_all(&leaf).unwrap();
        std::fs::write(top.join("slice/cpu.max"), "150000 100000\n").unwrap();
        std::fs::write(leaf.join("cpu.max"), "max 100000\n").unwrap();
        // Above the mount point: must not count.
        std::fs::write(dir.join("cpu.max"), "100000 100000\n").unwrap();
        let groups = "0::/slice/service\n";
        let mounts = format!("1 2 0:1 / {} rw - cgroup2 cgroup2 rw\n", top.display());
        assert_eq!(limit_in(Hierarchy::V2, groups, &mounts), Some(2));
        std::fs::write(leaf.join("cpu.max"), "350000 100000\n").unwrap();
        assert_eq!(limit_in(Hierarchy::V2, groups, &mounts), Some(2));
        std::fs::write(leaf.join("cpu.max"), "50000 100000\n").unwrap();
        assert_eq!(limit_in(Hierarchy::V2, groups, &mounts), Some(1));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("md5pool-cgroup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
