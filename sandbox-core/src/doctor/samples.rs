//! Literal `/proc` samples shared by the doctor's unit tests.

/// `/proc/self/mountinfo` of this project's test machine: a hybrid cgroup host (memory,
/// pids, cpu on v1 hierarchies; cgroup2 at `/sys/fs/cgroup/unified` with only hugetlb),
/// inside a VM that also carries a `/.dockerenv`, with an unmasked `/proc`.
pub(crate) const HYBRID_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334460k,nr_inodes=3083615,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
28 27 0:25 / /mnt/sandboxing/model_tools_env/v1/python ro,nosuid,nodev,relatime - tmpfs model_tools_unavailable ro,size=4k,mode=755
29 26 0:26 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

/// `/sys/fs/cgroup/unified/cgroup.controllers` of the same machine.
pub(crate) const HYBRID_V2_CONTROLLERS: &str = "hugetlb\n";

/// `/proc/self/cgroup` of the same machine.
pub(crate) const HYBRID_PROC_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/f9256aba096644396ad750cb33e26f14
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

/// A pure cgroup v2 desktop (Ubuntu 24.04-like): systemd's binfmt_misc automount is the
/// only mount on top of `/proc`, and it sits on a permanently empty directory.
pub(crate) const V2_MOUNTINFO: &str = "\
24 29 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
25 29 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:13 - proc proc rw
29 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
47 25 0:41 / /proc/sys/fs/binfmt_misc rw,relatime shared:29 - autofs systemd-1 rw,fd=29,pgrp=1,timeout=0,minproto=5,maxproto=5,direct,pipe_ino=17957
";

/// A login shell's cgroup on that desktop: a session scope owned by root.
pub(crate) const V2_PROC_CGROUP_SESSION: &str = "0::/user.slice/user-1000.slice/session-2.scope\n";

/// A Docker container (cgroup v2, private cgroupns, default masked paths).
pub(crate) const DOCKER_MOUNTINFO: &str = "\
1000 900 0:50 / / rw,relatime master:300 - overlay overlay rw,lowerdir=/l,upperdir=/u,workdir=/w
1001 1000 0:53 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
1002 1000 0:54 / /dev rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
1004 1000 0:56 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
1005 1004 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot
901 1001 0:53 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw
904 1001 0:53 /sys /proc/sys ro,nosuid,nodev,noexec,relatime - proc proc rw
906 1001 0:58 / /proc/acpi ro,relatime - tmpfs tmpfs ro
907 1001 0:54 /null /proc/kcore rw,nosuid - tmpfs tmpfs rw,size=65536k,mode=755
";

/// A cgroup v1 host (CentOS 7-like): `cpu,cpuacct` share one hierarchy.
pub(crate) const V1_MOUNTINFO: &str = "\
18 61 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
19 61 0:3 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw
25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,cpu,cpuacct
30 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,memory
31 25 0:27 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,pids
61 1 253:0 / / rw,relatime shared:1 - xfs /dev/mapper/centos-root rw,attr2,inode64,noquota
";

pub(crate) const V1_PROC_CGROUP: &str = "\
10:memory:/user.slice
9:pids:/user.slice/user-1000.slice
4:cpu,cpuacct:/user.slice
1:name=systemd:/user.slice/user-1000.slice/session-1.scope
";
