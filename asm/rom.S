# rom: read-only regions. The command line names a ROM frame (rom=<pfn>) and a ROMD
# frame (rmd=<pfn>) the device model backs; both start with the magic "ROM-TEST". The
# kernel maps them, reads the magic from each, writes a qword into the ROM (an mmio exit;
# the ROM must be unchanged afterwards) and one into the ROMD, which the kernel must then
# read back as the device model stored it: the value itself (pvshadow run's plain ROMD
# device), or the value plus inc=<n> (the test's device model adds one). With brk=1 it finally
# writes a qword straddling the end of the ROM frame, which cannot be emulated: the run
# must end with an internal_error exit. Needs: pvshadow run --rom/--romd
# (the header below gives them, with asm/rom.bin), or its test.
# pvshadow: --rom rom.bin@0xf00 --romd rom.bin@0xf01 --cmdline "rom=f00 rmd=f01"
.include "pv.inc"

.equ KEY_ROM, 0x3d6d6f72                   # "rom="
.equ KEY_ROMD, 0x3d646d72                  # "rmd="
.equ KEY_BREAK, 0x3d6b7262                 # "brk="
.equ KEY_INC, 0x3d636e69                   # "inc="
.equ MAGIC, 0x545345542d4d4f52             # "ROM-TEST"
.equ PTE_PRW, PTE_P | PTE_RW

# map_pfn(rdi = va, rsi = pfn): a writable guest mapping of the frame (the shadows keep it
# read-only: the guest cannot tell)
map_pfn:
    push rdi
    mov rdi, rsi
    call pfn_to_mfn
    pop rdi
    shl rax, 12
    lea rsi, [rax + PTE_PRW]
    call map_va
    ret

test_main:
    mov edi, KEY_ROM
    call cmdline_hex
    mov r12, rax
    mov edi, KEY_ROMD
    call cmdline_hex
    mov r13, rax
    test r12, r12
    jz no_rom
    test r13, r13
    jz no_rom
    call scratch_va
    mov rbx, rax                          # ROM at rbx, ROMD at rbx + 4096
    mov rdi, rbx
    mov rsi, r12
    call map_pfn
    lea rdi, [rbx + 4096]
    mov rsi, r13
    call map_pfn

    # reads are plain reads
    mov rdi, [rbx]
    movabs rsi, MAGIC
    lea rdx, [rip + m_rom_magic]
    call check_eq
    mov rdi, [rbx + 4096]
    movabs rsi, MAGIC
    lea rdx, [rip + m_romd_magic]
    call check_eq

    # a write to the ROM: an mmio exit, and the ROM stays as it was
    mov r14, [rbx + 8]
    mov rax, 0x1234
    mov [rbx + 8], rax
    mov rdi, [rbx + 8]
    mov rsi, r14
    lea rdx, [rip + m_rom_kept]
    call check_eq

    # a write to the ROMD: the device model stores the value (plus inc=)
    mov qword ptr [rbx + 4096 + 16], 0x5678
    mov edi, KEY_INC
    call cmdline_hex
    lea rsi, [rax + 0x5678]
    mov rdi, [rbx + 4096 + 16]
    lea rdx, [rip + m_romd]
    call check_eq

    # optionally, a store the emulator refuses: it straddles the end of the ROM frame
    mov edi, KEY_BREAK
    call cmdline_hex
    test rax, rax
    jz done
    mov rax, 0x1111111111111111
    mov [rbx + 4092], rax
    lea rdi, [rip + m_straddle]
    call fail
done:
    ret
no_rom:
    lea rdi, [rip + m_no_rom]
    call skip
    ret

m_rom_magic: .asciz "the ROM's first qword"
m_romd_magic: .asciz "the ROMD's first qword"
m_rom_kept: .asciz "a write leaves the ROM unchanged"
m_romd: .asciz "the ROMD holds what the device model stored"
m_straddle: .asciz "a straddling store into the ROM came back"
m_no_rom: .asciz "no rom=<pfn> and rmd=<pfn> on the command line"
