"""CPUID as Xen answers a PV guest's forced-emulation cpuid."""
from pvshadow.shadow.cpuid import XEN_CPUID_SIGNATURE, cpu_model_cpuid, guest_cpuid

VERSION = (4, 19)


def ask(leaf, subleaf=0):
    return guest_cpuid(leaf, subleaf, VERSION, 28)


def test_leaf_0x40000000_names_xen_and_its_last_leaf():
    assert ask(0x40000000) == (0x40000005,) + XEN_CPUID_SIGNATURE


def test_leaf_0x40000001_is_the_version_xen_version_reports():
    assert ask(0x40000001)[0] == (4 << 16) | 19


def test_leaf_0x40000002_offers_one_hypercall_page_and_preserve_ad():
    assert ask(0x40000002) == (1, 0x40000000, 1, 0)


def test_leaf_0x40000005_gives_a_pv_guest_the_machine_address_width():
    assert ask(0x40000005) == (0, 28, 0, 0)
    assert ask(0x40000005, 1) == (0, 0, 0, 0)


def test_leaves_past_xens_last_are_empty():
    assert ask(0x40000006) == ask(0x400000ff) == (0, 0, 0, 0)


def test_leaf_1_sets_the_hypervisor_bit_and_hides_vmx_smx_monitor():
    c = ask(1)[2]
    assert c >> 31 == 1
    assert c & ((1 << 3) | (1 << 5) | (1 << 6)) == 0


def test_other_leaves_are_the_cpu_models():
    assert ask(0) == cpu_model_cpuid(0, 0)
    assert ask(0x80000001) == cpu_model_cpuid(0x80000001, 0)
