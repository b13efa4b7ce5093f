"""Paging: x86-64 page-table arithmetic and walks, direct paging (Xen's type rules)."""
