// SPDX-License-Identifier: GPL-2.0
/*
 * skytime_vm_pps: a PPS source for skytime's VM test, triggered from outside
 * the guest. It is a tty line discipline: attach it to a spare UART with
 * `ldattach 29 /dev/ttyS2` and every burst of bytes that arrives there after a
 * quiet gap becomes one pps_event(), timestamped by the kernel's PPS core as
 * the bytes reach the line discipline. The host writes a burst at each true
 * second, so /dev/ppsN carries real RFC 2783 edges that no guest timer made.
 *
 * Not for real hardware: a real receiver's pulse belongs on pps-gpio or the
 * DCD line (pps-ldisc).
 */
#include <linux/module.h>
#include <linux/tty.h>
#include <linux/tty_ldisc.h>
#include <linux/pps_kernel.h>
#include <linux/ktime.h>
#include <linux/slab.h>

#define SKYTIME_VM_PPS_LDISC N_DEVELOPMENT

/* Bytes closer together than this belong to one burst, i.e. one edge. */
static unsigned int quiet_gap_ms = 300;
module_param(quiet_gap_ms, uint, 0644);
MODULE_PARM_DESC(quiet_gap_ms, "gap before a new burst counts as a new edge");

struct vm_pps {
	struct pps_device *pps;
	ktime_t last_byte;
};

static int vm_pps_open(struct tty_struct *tty)
{
	struct pps_source_info info = {
		.name = "skytime-vm-pps",
		.path = "",
		.mode = PPS_CAPTUREASSERT | PPS_OFFSETASSERT |
			PPS_CANWAIT | PPS_TSFMT_TSPEC,
		.owner = THIS_MODULE,
	};
	struct vm_pps *vp = kzalloc(sizeof(*vp), GFP_KERNEL);

	if (!vp)
		return -ENOMEM;
	snprintf(info.path, sizeof(info.path), "/dev/%s", tty->name);
	vp->pps = pps_register_source(&info, PPS_CAPTUREASSERT | PPS_OFFSETASSERT);
	if (IS_ERR(vp->pps)) {
		int err = PTR_ERR(vp->pps);

		kfree(vp);
		return err;
	}
	tty->disc_data = vp;
	tty->receive_room = 4096;
	pr_info("pps%d: skytime-vm-pps source on %s\n", vp->pps->id, tty->name);
	return 0;
}

static void vm_pps_close(struct tty_struct *tty)
{
	struct vm_pps *vp = tty->disc_data;

	if (!vp)
		return;
	pps_unregister_source(vp->pps);
	tty->disc_data = NULL;
	kfree(vp);
}

static void vm_pps_receive_buf(struct tty_struct *tty, const unsigned char *cp,
			       const char *fp, int count)
{
	struct vm_pps *vp = tty->disc_data;
	struct pps_event_time ts;
	ktime_t now;

	pps_get_ts(&ts);
	if (!vp || count <= 0)
		return;
	now = ktime_get();
	if (ktime_ms_delta(now, vp->last_byte) >= quiet_gap_ms)
		pps_event(vp->pps, &ts, PPS_CAPTUREASSERT, NULL);
	vp->last_byte = now;
}

static struct tty_ldisc_ops vm_pps_ldisc = {
	.owner = THIS_MODULE,
	.num = SKYTIME_VM_PPS_LDISC,
	.name = "skytime-vm-pps",
	.open = vm_pps_open,
	.close = vm_pps_close,
	.receive_buf = vm_pps_receive_buf,
};

static int __init vm_pps_init(void)
{
	return tty_register_ldisc(&vm_pps_ldisc);
}

static void __exit vm_pps_exit(void)
{
	tty_unregister_ldisc(&vm_pps_ldisc);
}

module_init(vm_pps_init);
module_exit(vm_pps_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("skytime VM test: PPS edges from bytes on a tty, sent by the host at true seconds");
