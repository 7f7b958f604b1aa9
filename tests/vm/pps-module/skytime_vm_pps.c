// SPDX-License-Identifier: GPL-2.0
/*
 * skytime_vm_pps: a PPS source for skytime's VM test, triggered from outside
 * the guest.
 *
 * It drives a spare 16550-compatible UART directly (by default COM3: I/O
 * 0x3e8, which the VM test wires to IRQ 5): the host writes a burst of bytes
 * to that UART at each true second, and the UART's receive interrupt becomes
 * one pps_event(), timestamped in hard-interrupt context as pps-gpio does on
 * a Raspberry Pi. /dev/ppsN is then a real RFC 2783 source that no guest timer
 * drives. The tty layer is not used: its workqueue would add milliseconds of
 * scheduling jitter between the interrupt and the timestamp.
 *
 * Not for real hardware: nothing else may use the UART (the 8250 driver only
 * touches it if its tty is opened).
 */
#include <linux/module.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/ktime.h>
#include <linux/pps_kernel.h>
#include <linux/serial_reg.h>

static unsigned int io = 0x3e8;
module_param(io, uint, 0444);
MODULE_PARM_DESC(io, "I/O base of the UART the host pulses");
static unsigned int irq = 5;
module_param(irq, uint, 0444);
MODULE_PARM_DESC(irq, "its interrupt line");
/* Bytes closer together than this belong to one burst, i.e. one edge. */
static unsigned int quiet_gap_ms = 300;
module_param(quiet_gap_ms, uint, 0644);
MODULE_PARM_DESC(quiet_gap_ms, "gap before a new burst counts as a new edge");

static struct pps_device *pps;
static ktime_t last_byte;
static unsigned long edges, bytes;

static irqreturn_t vm_pps_irq(int irqno, void *dev_id)
{
	struct pps_event_time ts;
	ktime_t now;
	bool got = false;

	pps_get_ts(&ts);
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
		pps_event(pps, &ts, PPS_CAPTUREASSERT, NULL);
		edges++;
	}
	last_byte = now;
	return IRQ_HANDLED;
}

static int __init vm_pps_init(void)
{
	struct pps_source_info info = {
		.name = "skytime-vm-pps",
		.mode = PPS_CAPTUREASSERT | PPS_OFFSETASSERT |
			PPS_CANWAIT | PPS_TSFMT_TSPEC,
		.owner = THIS_MODULE,
	};
	int err;

	snprintf(info.path, sizeof(info.path), "uart@0x%x", io);
	pps = pps_register_source(&info, PPS_CAPTUREASSERT | PPS_OFFSETASSERT);
	if (IS_ERR(pps))
		return PTR_ERR(pps);

	/* 8N1, no FIFO (each byte interrupts at once), receive interrupt only. */
	outb(UART_LCR_WLEN8, io + UART_LCR);
	outb(0, io + UART_FCR);
	outb(UART_MCR_OUT2 | UART_MCR_DTR | UART_MCR_RTS, io + UART_MCR);
	while (inb(io + UART_LSR) & UART_LSR_DR)
		inb(io + UART_RX);
	err = request_irq(irq, vm_pps_irq, 0, "skytime-vm-pps", &pps);
	if (err) {
		pps_unregister_source(pps);
		return err;
	}
	outb(UART_IER_RDI, io + UART_IER);
	pr_info("pps%d: skytime-vm-pps on the UART at 0x%x, IRQ %u\n", pps->id, io, irq);
	return 0;
}

static void __exit vm_pps_exit(void)
{
	outb(0, io + UART_IER);
	free_irq(irq, &pps);
	pps_unregister_source(pps);
	pr_info("skytime-vm-pps: %lu edges from %lu bytes\n", edges, bytes);
}

module_init(vm_pps_init);
module_exit(vm_pps_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("skytime VM test: PPS edges from a UART that the host writes at true seconds");
