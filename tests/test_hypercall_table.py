"""The hypercall table: each of Xen's numbers it names resolves to its family's handler
(families are imported at their first call), and an unknown number is -ENOSYS."""
from pvshadow.shadow.abi.xen import ENOSYS
from pvshadow.shadow.hypercall import HypercallTable, default_handlers, resolve


def test_every_entry_names_a_handler_that_exists():
    for nr, entry in default_handlers().items():
        handler = resolve(entry)
        assert callable(handler) and handler.__name__ == entry[1], (nr, entry)


def test_an_entry_is_resolved_at_its_first_call_and_kept():
    from pvshadow.shadow import api
    from pvshadow.shadow.abi import xen
    from pvshadow.shadow.hypercall.version import do_xen_version
    v = api.boot('hello').vcpus[0]
    table = HypercallTable({xen.HYPERVISOR_xen_version: ('version', 'do_xen_version')})
    assert table.call(v, xen.HYPERVISOR_xen_version, (xen.XENVER_version, 0)) == \
        do_xen_version(v, xen.XENVER_version, 0)
    assert table.handlers[xen.HYPERVISOR_xen_version] is do_xen_version


def test_an_unknown_number_is_enosys():
    assert HypercallTable(default_handlers()).call(None, 4095, ()) == -ENOSYS
