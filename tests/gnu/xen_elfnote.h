/*
 * Xen ELF notes for the GNU-built test kernels (types from xen/include/public/elfnote.h),
 * emitted into a .note.Xen section as real PV kernels do. Included by their .S files,
 * which the C preprocessor runs over.
 */
#define XEN_ELFNOTE_ENTRY          1
#define XEN_ELFNOTE_HYPERCALL_PAGE 2
#define XEN_ELFNOTE_VIRT_BASE      3
#define XEN_ELFNOTE_PADDR_OFFSET   4
#define XEN_ELFNOTE_XEN_VERSION    5
#define XEN_ELFNOTE_GUEST_OS       6
#define XEN_ELFNOTE_LOADER         8

.macro ELFNOTE_HEAD type
    .pushsection .note.Xen, "a", @note
    .balign 4
    .long 2f - 1f
    .long 4f - 3f
    .long \type
1:  .asciz "Xen"
2:  .balign 4
3:
.endm
.macro ELFNOTE_TAIL
4:  .balign 4
    .popsection
.endm
.macro ELFNOTE_STR type, text
    ELFNOTE_HEAD \type
    .asciz "\text"
    ELFNOTE_TAIL
.endm
.macro ELFNOTE_QUAD type, value
    ELFNOTE_HEAD \type
    .quad \value
    ELFNOTE_TAIL
.endm
