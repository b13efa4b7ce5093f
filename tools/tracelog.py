"""The JSON-lines log of `pvshadow trace --log` and `pvshadow access --json`: one object a
line, in the shape docs/trace-log.schema.json defines (JSON Schema 2020-12).

Every line carries `type`, `seq` (0, 1, 2 ... in the file), `domid`, `vcpu` and
`instructions` (the host's virtual clock: instructions scheduled so far). Addresses,
frame numbers, hypercall arguments and register values are "0x..." strings, so jq and
JavaScript readers do not round 64-bit values; `rc` is the signed value the guest sees in
rax (a negative Xen errno on failure), `error_code` and `vector` plain integers.
"""
import json
import sys

# The keys whose values are addresses or frame numbers.
HEX_KEYS = frozenset(('va', 'rip', 'next_rip', 'gla', 'gfn', 'dr6'))


def _hex(value):
    return f'{value:#x}' if isinstance(value, int) and not isinstance(value, bool) else value


def log_record(event: dict, seq: int, domid: int, vcpu: int, instructions: int) -> dict:
    """The log line for one hypervisor event (the tracer's dict, with integers)."""
    record = {'type': event['type'], 'seq': seq, 'domid': event.get('domid', domid),
              'vcpu': event.get('vcpu', vcpu), 'instructions': instructions}
    for key, value in event.items():
        if key in record:
            continue
        if key in HEX_KEYS:
            value = _hex(value)
        elif key == 'args':
            value = [_hex(a) for a in value]
        elif key == 'rc' and isinstance(value, int) and value >= 1 << 63:
            value -= 1 << 64              # what the guest reads as a signed long
        record[key] = value
    return record


class JsonLog:
    """Writes log records to a stream, numbering them."""

    def __init__(self, stream):
        self.stream = stream
        self.seq = 0

    def write(self, event: dict, domain) -> None:
        v = domain.running_vcpu()
        record = log_record(event, self.seq, domain.domid, v.vcpu_id, domain.virtual_time)
        self.seq += 1
        self.stream.write(json.dumps(record) + '\n')
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not sys.stdout:
            self.stream.close()
