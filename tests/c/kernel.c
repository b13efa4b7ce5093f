/*
 * A PV64 kernel in C, written against Xen's public ABI only (hypercall numbers, structure
 * offsets and errnos as xen/include/public defines them), so it would boot on Xen as it
 * boots here. Start of day as small PV frameworks do it: own stack (head.S), Xen's CPUID
 * leaves through the forced-emulation prefix, shared_info mapped from start_info, event
 * callback registered, an IPI sent to itself and delivered, VIRQ_TIMER bound and a
 * one-shot timer awaited with SCHEDOP_block, a trap table (#UD handled), its own GDT
 * (set_gdt, a selector loaded), a user-mode round trip (iret to user mode, syscall back),
 * a line through the PV console ring, refused hypercalls checked for their errno. It
 * prints its own verdict.
 */
#include <stdint.h>

#define __HYPERVISOR_set_trap_table    0
#define __HYPERVISOR_set_gdt           2
#define __HYPERVISOR_stack_switch      3
#define __HYPERVISOR_set_callbacks     4
#define __HYPERVISOR_update_va_mapping 14
#define __HYPERVISOR_set_timer_op      15
#define __HYPERVISOR_xen_version       17
#define __HYPERVISOR_console_io        18
#define __HYPERVISOR_mmuext_op         26
#define __HYPERVISOR_sched_op          29
#define __HYPERVISOR_event_channel_op  32

#define CONSOLEIO_write       0
#define SCHEDOP_block         1
#define SCHEDOP_shutdown      2
#define SHUTDOWN_poweroff     0
#define EVTCHNOP_bind_virq    1
#define EVTCHNOP_send         4
#define EVTCHNOP_bind_ipi     7
#define VIRQ_TIMER            0
#define UVMF_INVLPG           2
#define MMUEXT_NEW_USER_BASEPTR 15
#define DOMID_SELF            0x7ff0
#define FLAT_KERNEL_CS        0xe033
#define FLAT_KERNEL_SS        0xe02b
#define EINVAL                22

struct start_info {                 /* xen.h, up to the fields this kernel reads */
    char magic[32];
    uint64_t nr_pages, shared_info;
    uint32_t flags, pad;
    uint64_t store_mfn;
    uint32_t store_evtchn, pad1;
    uint64_t console_mfn;
    uint32_t console_evtchn, pad2;
    uint64_t pt_base, nr_pt_frames, mfn_list;
};
_Static_assert(__builtin_offsetof(struct start_info, mfn_list) == 104, "start_info layout");

struct trap_info { uint8_t vector, flags; uint16_t cs; uint64_t address; };
struct mmuext_op { uint32_t cmd; uint64_t arg1, arg2; };
_Static_assert(sizeof(struct trap_info) == 16 && sizeof(struct mmuext_op) == 24, "ABI sizes");
#define VIRT_BASE 0xffffffff80000000UL

struct vcpu_time_info { uint32_t version, pad0; uint64_t tsc_timestamp, system_time;
                        uint32_t tsc_to_system_mul; int8_t tsc_shift; int8_t pad1[3]; };
struct vcpu_info {
    uint8_t evtchn_upcall_pending, evtchn_upcall_mask;
    uint8_t pad[6];
    uint64_t evtchn_pending_sel;
    uint64_t cr2, pad2;
    struct vcpu_time_info time;
};
struct shared_info {
    struct vcpu_info vcpu_info[32];
    uint64_t evtchn_pending[64];
    uint64_t evtchn_mask[64];
};
_Static_assert(sizeof(struct vcpu_info) == 64, "vcpu_info is 64 bytes");
_Static_assert(__builtin_offsetof(struct shared_info, evtchn_mask) == 2560, "shared_info layout");

extern char hypercall_page[];
extern volatile struct shared_info shared_info_page;
extern void event_entry(void), ud_entry(void), syscall_entry(void), user_entry(void);
extern char console_page[], gdt_page[], user_stack_top[], syscall_stack_top[], stack_top[];
extern volatile uint32_t ud_events;
extern long run_user(void (*rip)(void), void *rsp);

static long hypercall4(int nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4)
{
    register uint64_t rdi asm("rdi") = a1, rsi asm("rsi") = a2, rdx asm("rdx") = a3;
    register uint64_t r10 asm("r10") = a4;
    long rax;
    asm volatile ("call *%[entry]"
                  : "=a" (rax), "+r" (rdi), "+r" (rsi), "+r" (rdx), "+r" (r10)
                  : [entry] "r" (hypercall_page + nr * 32)
                  : "rcx", "r8", "r9", "r11", "memory");
    return rax;
}
static long hypercall3(int nr, uint64_t a1, uint64_t a2, uint64_t a3)
{
    return hypercall4(nr, a1, a2, a3, 0);
}

static unsigned long str_len(const char *s) { unsigned long n = 0; while (s[n]) n++; return n; }
static void puts(const char *s) { hypercall3(__HYPERVISOR_console_io, CONSOLEIO_write, str_len(s), (uint64_t)s); }

static int failures;
static void check(int ok, const char *what)
{
    if (!ok) {
        puts("failed: "); puts(what); puts("\n");
        failures++;
    }
}

static volatile unsigned ipi_port, timer_port, ipi_events, timer_events;

void do_event(void)
{
    volatile struct vcpu_info *v = &shared_info_page.vcpu_info[0];
    v->evtchn_upcall_pending = 0;
    uint64_t sel = __atomic_exchange_n(&v->evtchn_pending_sel, 0, __ATOMIC_SEQ_CST);
    while (sel) {
        unsigned word = __builtin_ctzll(sel);
        sel &= sel - 1;
        uint64_t pending = shared_info_page.evtchn_pending[word] & ~shared_info_page.evtchn_mask[word];
        while (pending) {
            unsigned bit = __builtin_ctzll(pending);
            pending &= pending - 1;
            __atomic_and_fetch(&shared_info_page.evtchn_pending[word], ~(1ULL << bit), __ATOMIC_SEQ_CST);
            unsigned port = word * 64 + bit;
            if (port == ipi_port) ipi_events++;
            if (port == timer_port) timer_events++;
        }
    }
}

static uint64_t system_time(void)
{
    volatile struct vcpu_time_info *t = &shared_info_page.vcpu_info[0].time;
    uint32_t version;
    uint64_t now;
    do {
        version = t->version;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
        now = t->system_time;
        __atomic_thread_fence(__ATOMIC_SEQ_CST);
    } while ((version & 1) || version != t->version);
    return now;
}

/* CPUID as a PV kernel asks for it: Xen's forced-emulation prefix (ud2; "xen") */
static void xen_cpuid(uint32_t leaf, uint32_t r[4])
{
    asm volatile(".byte 0x0f, 0x0b, 0x78, 0x65, 0x6e; cpuid"
                 : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

static void shutdown(void)
{
    uint32_t reason = SHUTDOWN_poweroff;
    hypercall3(__HYPERVISOR_sched_op, SCHEDOP_shutdown, (uint64_t)&reason, 0);
}

void kernel_main(struct start_info *si)
{
    puts("Hello from a C-built PV kernel\n");
    long version = hypercall3(__HYPERVISOR_xen_version, 0, 0, 0);
    check((version >> 16) >= 3, "xen_version reports a 3.x or later hypervisor");
    uint32_t leaf[4];
    xen_cpuid(0x40000000, leaf);
    check(leaf[1] == 0x566e6558 && leaf[2] == 0x65584d4d && leaf[3] == 0x4d4d566e,
          "CPUID 0x40000000 says XenVMMXenVMM");
    xen_cpuid(0x40000001, leaf);
    check(leaf[0] == (uint32_t)version, "CPUID 0x40000001 matches xen_version");

    /* shared_info: map its machine frame over the page kept for it */
    long rc = hypercall3(__HYPERVISOR_update_va_mapping, (uint64_t)&shared_info_page,
                         si->shared_info | 0x63, UVMF_INVLPG);
    check(rc == 0, "update_va_mapping of shared_info");

    /* the event callback (the failsafe is not used: no segment reloads here) */
    check(hypercall3(__HYPERVISOR_set_callbacks, (uint64_t)event_entry, 0, 0) == 0, "set_callbacks");
    shared_info_page.vcpu_info[0].evtchn_upcall_mask = 0;

    /* an event sent to itself arrives once */
    uint32_t ipi[2] = { 0, 0 };                       /* struct evtchn_bind_ipi { vcpu; port } */
    check(hypercall3(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_ipi, (uint64_t)ipi, 0) == 0, "bind_ipi");
    ipi_port = ipi[1];
    uint32_t send = ipi_port;
    check(hypercall3(__HYPERVISOR_event_channel_op, EVTCHNOP_send, (uint64_t)&send, 0) == 0, "send");
    check(ipi_events == 1, "the IPI is delivered once through the event callback");

    /* a bad port is refused with -EINVAL */
    uint32_t bad = 4000;
    check(hypercall3(__HYPERVISOR_event_channel_op, EVTCHNOP_send, (uint64_t)&bad, 0) == -EINVAL,
          "send on an unbound port is -EINVAL");

    /* VIRQ_TIMER and a one-shot timer 1 ms ahead: block until it fires */
    uint32_t virq[3] = { VIRQ_TIMER, 0, 0 };          /* struct evtchn_bind_virq { virq; vcpu; port } */
    check(hypercall3(__HYPERVISOR_event_channel_op, EVTCHNOP_bind_virq, (uint64_t)virq, 0) == 0, "bind_virq");
    timer_port = virq[2];
    uint64_t start = system_time(), deadline = start + 1000000;
    check(hypercall3(__HYPERVISOR_set_timer_op, deadline, 0, 0) == 0, "set_timer_op");
    for (int i = 0; i < 100 && !timer_events; i++)
        hypercall3(__HYPERVISOR_sched_op, SCHEDOP_block, 0, 0);
    check(timer_events == 1, "the timer event wakes the blocked vCPU");
    check(system_time() >= deadline, "system_time has reached the deadline");

    /* a trap table: #UD reaches the kernel's handler, which steps over the ud2 */
    static const struct trap_info traps[] = {
        { 6, 0, FLAT_KERNEL_CS, (uint64_t)ud_entry }, { 0, 0, 0, 0 } };
    check(hypercall3(__HYPERVISOR_set_trap_table, (uint64_t)traps, 0, 0) == 0, "set_trap_table");
    asm volatile ("ud2");
    check(ud_events == 1, "#UD bounces to the trap-table handler once");

    /* its own GDT: the frame is made read-only, installed, and a selector from it loads */
    const uint64_t *p2m = (const uint64_t *)si->mfn_list;
    uint64_t gdt_mfn = p2m[((uint64_t)gdt_page - VIRT_BASE) >> 12];
    uint64_t stack_mfn = p2m[((uint64_t)stack_top - 4096 - VIRT_BASE) >> 12];
    check(hypercall3(__HYPERVISOR_set_gdt, (uint64_t)&stack_mfn, 512, 0) == -EINVAL,
          "set_gdt of a frame mapped writable is -EINVAL");
    check(hypercall3(__HYPERVISOR_update_va_mapping, (uint64_t)gdt_page, (gdt_mfn << 12) | 0x21,
                     UVMF_INVLPG) == 0, "gdt page made read-only");
    check(hypercall3(__HYPERVISOR_set_gdt, (uint64_t)&gdt_mfn, 512, 0) == 0, "set_gdt");
    uint16_t es;
    asm volatile ("mov %w1, %%es; mov %%es, %w0" : "=r" (es) : "r" (0x0b));
    check(es == 0x0b, "a data selector from the new GDT loads");
    asm volatile ("mov %w0, %%es" : : "r" (0));

    /* a user-mode round trip: the kernel's own tables as the user tables, a syscall back */
    uint64_t l4_mfn = p2m[(si->pt_base - VIRT_BASE) >> 12];
    struct mmuext_op user_base = { MMUEXT_NEW_USER_BASEPTR, l4_mfn, 0 };
    check(hypercall4(__HYPERVISOR_mmuext_op, (uint64_t)&user_base, 1, 0, DOMID_SELF) == 0,
          "NEW_USER_BASEPTR");
    check(hypercall3(__HYPERVISOR_stack_switch, FLAT_KERNEL_SS, (uint64_t)syscall_stack_top, 0) == 0,
          "stack_switch");
    check(hypercall3(__HYPERVISOR_set_callbacks, (uint64_t)event_entry, 0, (uint64_t)syscall_entry) == 0,
          "set_callbacks with a syscall callback");
    check(run_user(user_entry, user_stack_top) == 0x5157, "the user program's syscall comes back");

    /* the PV console ring: map console.domU, write a line, notify its event channel */
    check(hypercall3(__HYPERVISOR_update_va_mapping, (uint64_t)console_page,
                     (si->console_mfn << 12) | 0x63, UVMF_INVLPG) == 0, "map the console ring");
    volatile uint32_t *out_cons = (uint32_t *)(console_page + 3080), *out_prod = out_cons + 1;
    const char *line = "written through the console ring\n";
    uint32_t prod = *out_prod;
    for (const char *c = line; *c; c++)
        console_page[1024 + (prod++ & 2047)] = *c;       /* out[2048] follows in[1024] */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    *out_prod = prod;
    uint32_t console_port = si->console_evtchn;
    check(hypercall3(__HYPERVISOR_event_channel_op, EVTCHNOP_send, (uint64_t)&console_port, 0) == 0,
          "notify the console");
    check(*out_cons == prod, "the console backend consumed the line");

    puts(failures ? "Test result: FAILURE\n" : "Test result: SUCCESS\n");
    shutdown();
}
