"""Xen's public ABI for x86-64 PV guests: numbers and structure layouts."""
