"""check_descriptor: what a 64-bit PV guest may put in its GDT."""
from pvshadow.shadow.hypercall.descriptors import check_descriptor

FLAT_CODE64_DPL0 = 0x00209a0000000000
FLAT_DATA_DPL0 = 0x0000920000000000
CALL_GATE = 0x00008c0000000000


def test_an_empty_descriptor_is_kept_as_it_is():
    assert check_descriptor(0) == 0


def test_a_code_segment_has_its_dpl_raised_to_the_guest_kernel_ring():
    assert check_descriptor(FLAT_CODE64_DPL0) == FLAT_CODE64_DPL0 | (3 << 45)


def test_a_data_segment_is_accepted():
    assert check_descriptor(FLAT_DATA_DPL0) is not None


def test_a_system_descriptor_such_as_a_call_gate_is_refused():
    assert check_descriptor(CALL_GATE) is None
