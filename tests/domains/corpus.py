"""virt-install command lines both virt-install and our parser must read to the same domain.

``{d}`` is the test's directory (a storage pool named ``{p}``); the files named exist there.
"""

from __future__ import annotations

# The seed command, with rhel7.0: Debian 12's virt-install refuses the bare "rhel7" our resolver
# maps to rhel7.0 (tested separately).
SEED = (
    "--virt-type=kvm --name=c73 --vcpus=1 -r 1024 --cdrom={d}/CentOS-7-x86_64-Minimal-1810.iso "
    "--network network=default --graphics vnc,listen=0.0.0.0 --noautoconsole --os-type=linux "
    "--os-variant=rhel7.0 --disk path={d}/CentOS-7.3-x86_64.qcow2,size=6,format=qcow"
)

COMMANDS = {
    "seed": SEED,
    "import_q35_custom_cpu": (
        "--name a1 --memory 512 --import --disk {d}/disk.raw --osinfo debian11 "
        "--cpu qemu64,disable=svm --serial pty --graphics none "
        "--network bridge=br0,model=e1000,mac=52:54:00:11:22:33"
    ),
    "kernel_boot_spice": (
        "--name a2 --memory 512 --vcpus 2,cpuset=1-3,^2 "
        "--boot kernel={d}/vmlinuz,initrd={d}/initrd.img,kernel_args='console=ttyS0 a=<b>' "
        "--disk {d}/disk.raw,bus=sata,cache=none --osinfo generic "
        "--graphics spice,listen=127.0.0.1,port=5905,password=s3cret "
        "--serial file,path={d}/serial.log --network none"
    ),
    "pxe_install": "--name px --memory 1024 --pxe --disk pool={p},size=1 --osinfo fedora37",
    "cdrom_new_pool_volume": (
        "--name ub --memory 2048 --vcpus 2 --cdrom {d}/inst.iso --disk pool={p},size=2 "
        "--osinfo ubuntu22.04 --graphics vnc"
    ),
    "import_existing_volume": (
        "--name alp --memory 256 --import --disk vol={p}/base.qcow2 --osinfo alpinelinux3.17"
    ),
    "windows_10": (
        "--name w10 --memory 4096 --vcpus 2 --cdrom {d}/inst.iso --disk pool={p},size=3 "
        "--osinfo win10"
    ),
    "windows_xp_legacy_devices": (
        "--name wxp --memory 512 --cdrom {d}/inst.iso --disk {d}/disk.raw --osinfo winxp"
    ),
    "several_disks": (
        "--name multi --memory 1024 --import --disk {d}/disk.raw --disk {d}/base.qcow2,bus=scsi "
        "--disk {d}/extra.iso,device=cdrom --disk {d}/data.raw,readonly=on "
        "--osinfo centos-stream9"
    ),
    "boot_order": (
        "--name bo --memory 512 --import --disk {d}/disk.raw --boot hd,network,cdrom "
        "--osinfo debian11"
    ),
    "tcg_fixed_vnc_port": (
        "--name tcg --memory 512 --virt-type qemu --import --disk {d}/disk.raw "
        "--graphics vnc,port=5907 --osinfo freebsd13.1"
    ),
    "host_model_nic_model": (
        "--name hm --memory=2048 --vcpus=4 --cpu host-model --import --disk={d}/disk.raw "
        "--network network=default,model=e1000e --osinfo opensuse15.4"
    ),
    "deprecated_short_options": (
        "-n shorts -r 768 --vcpus 2 --cpuset 0-1 -c {d}/inst.iso -w bridge=br1 "
        "--disk {d}/disk.raw --osinfo rocky9"
    ),
    "new_file_at_path": (
        "--name np --memory 1024 --cdrom {d}/inst.iso --disk path={d}/fresh.qcow2,size=1 "
        "--osinfo almalinux9"
    ),
    "legacy_qcow_ide": (
        "--name old --memory 1024 --import --disk path={d}/old.qcow,format=qcow,bus=ide "
        "--osinfo rhel6.10"
    ),
    "two_networks_two_serials": (
        "--name nets --memory 1024 --import --disk {d}/disk.raw --network network=default "
        "--network bridge=br0,model=rtl8139,mac=52:54:00:aa:bb:cc --serial pty "
        "--serial file,path={d}/second.log --osinfo debian11"
    ),
    "spice_default_listen": (
        "--name sp --memory 1024 --import --disk {d}/disk.raw --graphics spice --osinfo fedora37"
    ),
    "generic_os": "--name gen --memory 512 --import --disk {d}/disk.raw --osinfo generic",
}

# Files the commands name, created before virt-install runs: name -> qemu-img format or None
# for a plain file.
FILES = {
    "CentOS-7-x86_64-Minimal-1810.iso": None,
    "inst.iso": None,
    "extra.iso": None,
    "disk.raw": "raw",
    "data.raw": "raw",
    "base.qcow2": "qcow2",
    "old.qcow": "qcow",
    "vmlinuz": None,
    "initrd.img": None,
}
