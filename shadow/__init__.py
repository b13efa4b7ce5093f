"""pvshadow: a shadow-paging hypervisor for PV x86-64 guests, on Unicorn."""
