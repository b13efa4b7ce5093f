"""xl-style config files: one domain a file, xl's keys and value syntax, and a one-line
refusal for anything else."""
import pytest

from pvshadow.guests.config import DomainSpec, load_config
from pvshadow.guests.image import KernelError


def _cfg(tmp_path, text, name='d.cfg'):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_a_config_names_every_field_of_the_domain(tmp_path):
    spec = load_config(_cfg(tmp_path, '''
        name = "back"      # comments are ignored
        kernel = "pingpong"
        memory = 8
        vcpus = 2
        extra = "xst=1 rol=0"
        paging = "shadow"
        peer = "front"
    '''))
    assert spec == DomainSpec(kernel='pingpong', name='back', memory_mb=8, vcpus=2,
                              cmdline='xst=1 rol=0', paging='shadow', peer='front')


def test_cmdline_is_a_synonym_for_extra(tmp_path):
    assert load_config(_cfg(tmp_path, 'kernel="hello"\ncmdline="a=1"\n')).cmdline == 'a=1'


def test_a_relative_kernel_path_is_taken_from_the_configs_directory(tmp_path):
    (tmp_path / 'k.S').write_text('')
    assert load_config(_cfg(tmp_path, 'kernel = "k.S"')).kernel == str(tmp_path / 'k.S')


@pytest.mark.parametrize('text, says', [
    ('memory = 8', 'no kernel'),
    ('kernel = "hello"\ncolour = "red"', 'expected one of'),
    ('kernel = hello', 'not a quoted string'),
    ('kernel = "hello"\nmemory = "8"', 'memory wants a int'),
    ('kernel = "hello"\npaging = "nested"', 'paging must be'),
    ('kernel = "hello"\nvcpus = 9', 'vcpus 1 to 4'),
    ('kernel = "hello"\nmemory = 0', 'memory must be positive'),
    ('kernel = "hello"\ndevices = "gpu"', 'devices may name dma'),
])
def test_a_bad_config_is_refused_in_one_line(tmp_path, text, says):
    with pytest.raises(KernelError) as info:
        load_config(_cfg(tmp_path, text))
    assert says in str(info.value) and '\n' not in str(info.value)


def test_a_missing_config_is_refused_in_one_line(tmp_path):
    with pytest.raises(KernelError, match='No such file'):
        load_config(str(tmp_path / 'absent.cfg'))


def test_privileged_and_target_name_the_rights_a_domain_gets(tmp_path):
    spec = load_config(_cfg(tmp_path, 'kernel="hello"\nprivileged=1\ntarget="client"\n'))
    assert (spec.privileged, spec.target) == (True, 'client')
    assert load_config(_cfg(tmp_path, 'kernel="hello"\n')).privileged is False


def test_boot_host_makes_the_control_domain_and_sets_targets():
    from pvshadow.shadow.api import boot_host
    host, (back, client, dm) = boot_host([
        DomainSpec('hello', name='back', memory_mb=4, privileged=True),
        DomainSpec('hello', name='client', memory_mb=4),
        DomainSpec('hello', name='dm', memory_mb=4, target='client')])
    assert back.is_privileged and not client.is_privileged and not dm.is_privileged
    assert dm.target is client and back.target is None


def test_a_target_that_is_not_one_of_the_domains_is_refused():
    from pvshadow.shadow.api import boot_host
    with pytest.raises(ValueError, match="target 'nobody' is not one of the domains"):
        boot_host([DomainSpec('hello', name='dm', memory_mb=4, target='nobody')])


def test_an_xtf_style_config_with_type_pv_and_a_loader_is_accepted(tmp_path):
    spec = load_config(_cfg(tmp_path, 'name="t"\nvcpus=1\ntype="pv"\nloader="generic"\n'
                                      'memory=128\nkernel="hello"\ncmdline="hypercall"\n'))
    assert spec.cmdline == 'hypercall' and spec.memory_mb == 128


def test_a_guest_type_other_than_pv_is_refused_in_one_line(tmp_path):
    with pytest.raises(KernelError, match='type must be "pv"'):
        load_config(_cfg(tmp_path, 'kernel="hello"\ntype="hvm"\n'))


def test_targets_and_devices_are_lists_of_names(tmp_path):
    spec = load_config(_cfg(tmp_path, 'kernel="hello"\ntargets="client, other"\ndevices="dma"\n'))
    assert (spec.targets, spec.devices) == (('client', 'other'), ('dma',))
