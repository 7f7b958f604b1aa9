// SPDX-License-Identifier: GPL-2.0
/*
 * skytime_vm_phc: a PTP hardware clock with one external-timestamp channel
 * for skytime's VM test, its edges triggered from outside the guest.
 *
 * The trigger is the one tests/vm/pps-module uses (a spare 16550 UART the
 * host writes a burst to at each true second; load one module or the other,
 * not both). The clock's counter is the raw monotonic clock
 * (ktime_get_raw: the oscillator, never slewed or stepped) run at its own rate:
 *   phc = realtime_at_load + offset_ns + elapsed + elapsed * freq_ppb / 1e9,
 *   elapsed = raw - raw_at_load
 * so it is independent of CLOCK_REALTIME, which skytimed disciplines in the
 * guest: as that discipline steers, the PHC-to-system mapping has a real,
 * moving rate and offset to follow (a counter derived from CLOCK_REALTIME
 * would move with the steering and hide errors in the mapping).
 * It has one pin (function EXTTS, channel 0) and answers
 * PTP_SYS_OFFSET_EXTENDED (gettimex64) and PTP_SYS_OFFSET.
 *
 * Not for real hardware: nothing else may use the UART.
 */
#include <linux/module.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/ktime.h>
#include <linux/math64.h>
#include <linux/ptp_clock_kernel.h>
#include <linux/serial_reg.h>
#include <linux/timekeeping.h>

static unsigned int io = 0x3e8;
module_param(io, uint, 0444);
MODULE_PARM_DESC(io, "I/O base of the UART the host pulses");
static unsigned int irq = 5;
module_param(irq, uint, 0444);
MODULE_PARM_DESC(irq, "its interrupt line");
static unsigned int quiet_gap_ms = 300;
module_param(quiet_gap_ms, uint, 0644);
MODULE_PARM_DESC(quiet_gap_ms, "gap before a new burst counts as a new edge");
static int freq_ppb = 25000;
module_param(freq_ppb, int, 0444);
MODULE_PARM_DESC(freq_ppb, "how much faster than the raw monotonic clock the PHC runs, ppb (|x| <= 500000)");
static long offset_ns = 37000000000L; /* 64-bit guests only (the VM is x86_64) */
module_param(offset_ns, long, 0444);
MODULE_PARM_DESC(offset_ns, "PHC minus CLOCK_REALTIME at load, ns (from then on the PHC runs on its own)");

static struct ptp_clock *clock;
static struct ptp_pin_desc pins[1] = {
	{ .name = "SYNC0", .index = 0, .func = PTP_PF_NONE, .chan = 0 },
};
static bool extts_on;
static s64 base_raw_ns, base_phc_ns;
static ktime_t last_byte;
static unsigned long edges, stamped, bytes;

/* The PHC reading when the raw monotonic clock read raw_ns. */
static s64 phc_at(s64 raw_ns)
{
	s64 elapsed = raw_ns - base_raw_ns;
	s32 rem;
	s64 whole_s = div_s64_rem(elapsed, NSEC_PER_SEC, &rem);

	return base_phc_ns + elapsed + whole_s * freq_ppb +
	       div_s64((s64)rem * freq_ppb, NSEC_PER_SEC);
}

static int vm_phc_gettimex(struct ptp_clock_info *info, struct timespec64 *ts,
			   struct ptp_system_timestamp *sts)
{
	s64 raw;

	/* The system reads bracket the counter read only, as a NIC driver's
	 * bracket its register read: the window is what EXTENDED measures. */
	ptp_read_system_prets(sts);
	raw = ktime_get_raw_ns();
	ptp_read_system_postts(sts);
	*ts = ns_to_timespec64(phc_at(raw));
	return 0;
}

static int vm_phc_settime(struct ptp_clock_info *info, const struct timespec64 *ts)
{
	return -EOPNOTSUPP;
}

static int vm_phc_adjtime(struct ptp_clock_info *info, s64 delta)
{
	return -EOPNOTSUPP;
}

static int vm_phc_adjfine(struct ptp_clock_info *info, long scaled_ppm)
{
	return -EOPNOTSUPP;
}

static int vm_phc_enable(struct ptp_clock_info *info, struct ptp_clock_request *rq, int on)
{
	const unsigned int known = PTP_ENABLE_FEATURE | PTP_RISING_EDGE |
				   PTP_FALLING_EDGE | PTP_STRICT_FLAGS;
	unsigned int edges_asked;

	if (rq->type != PTP_CLK_REQ_EXTTS || rq->extts.index != 0)
		return -EOPNOTSUPP;
	if (rq->extts.flags & ~known)
		return -EOPNOTSUPP;
	/* Like a PHC that stamps the rising edge only: refuse the falling one. */
	edges_asked = rq->extts.flags & (PTP_RISING_EDGE | PTP_FALLING_EDGE);
	if (on && (rq->extts.flags & PTP_STRICT_FLAGS) && edges_asked != PTP_RISING_EDGE)
		return -EOPNOTSUPP;
	WRITE_ONCE(extts_on, !!on);
	return 0;
}

static int vm_phc_verify(struct ptp_clock_info *info, unsigned int pin,
			 enum ptp_pin_function func, unsigned int chan)
{
	if (pin != 0 || chan != 0)
		return -EINVAL;
	return (func == PTP_PF_NONE || func == PTP_PF_EXTTS) ? 0 : -EOPNOTSUPP;
}

static struct ptp_clock_info vm_phc_info = {
	.owner = THIS_MODULE,
	.name = "skytime-vm-phc",
	.max_adj = 0,
	.n_ext_ts = 1,
	.n_pins = 1,
	.pin_config = pins,
	.gettimex64 = vm_phc_gettimex,
	.settime64 = vm_phc_settime,
	.adjtime = vm_phc_adjtime,
	.adjfine = vm_phc_adjfine,
	.enable = vm_phc_enable,
	.verify = vm_phc_verify,
};

static irqreturn_t vm_phc_irq(int irqno, void *dev_id)
{
	/* Latched first, as the hardware latches its counter on the edge. */
	s64 raw_ns = ktime_get_raw_ns();
	ktime_t now;
	bool got = false;

	if (inb(io + UART_IIR) & UART_IIR_NO_INT)
		return IRQ_NONE;
	while (inb(io + UART_LSR) & UART_LSR_DR) {
		inb(io + UART_RX);
		bytes++;
		got = true;
	}
	if (!got)
		return IRQ_HANDLED;
	now = ktime_get();
	if (ktime_ms_delta(now, last_byte) >= quiet_gap_ms) {
		edges++;
		if (READ_ONCE(extts_on)) {
			struct ptp_clock_event ev = {
				.type = PTP_CLOCK_EXTTS,
				.index = 0,
				.timestamp = phc_at(raw_ns),
			};
			ptp_clock_event(clock, &ev);
			stamped++;
		}
	}
	last_byte = now;
	return IRQ_HANDLED;
}

static int __init vm_phc_init(void)
{
	int err;

	if (freq_ppb > 500000 || freq_ppb < -500000)
		return -EINVAL;
	base_raw_ns = ktime_get_raw_ns();
	base_phc_ns = ktime_get_real_ns() + offset_ns;
	clock = ptp_clock_register(&vm_phc_info, NULL);
	if (IS_ERR(clock))
		return PTR_ERR(clock);

	/* 8N1, no FIFO (each byte interrupts at once), receive interrupt only. */
	outb(UART_LCR_WLEN8, io + UART_LCR);
	outb(0, io + UART_FCR);
	outb(UART_MCR_OUT2 | UART_MCR_DTR | UART_MCR_RTS, io + UART_MCR);
	while (inb(io + UART_LSR) & UART_LSR_DR)
		inb(io + UART_RX);
	err = request_irq(irq, vm_phc_irq, 0, "skytime-vm-phc", &clock);
	if (err) {
		ptp_clock_unregister(clock);
		return err;
	}
	outb(UART_IER_RDI, io + UART_IER);
	pr_info("ptp%d: skytime-vm-phc on the UART at 0x%x, IRQ %u, %d ppb, offset %ld ns\n",
		ptp_clock_index(clock), io, irq, freq_ppb, offset_ns);
	return 0;
}

static void __exit vm_phc_exit(void)
{
	outb(0, io + UART_IER);
	free_irq(irq, &clock);
	ptp_clock_unregister(clock);
	pr_info("skytime-vm-phc: %lu edges (%lu stamped) from %lu bytes\n", edges, stamped, bytes);
}

module_init(vm_phc_init);
module_exit(vm_phc_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("skytime VM test: a PHC whose EXTTS edges come from a UART the host writes at true seconds");
