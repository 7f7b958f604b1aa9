// SPDX-License-Identifier: GPL-2.0
// The VM test's window on the guest kernel across a leap second: reads
// adjtimex(2) (modes 0: changes nothing) every 20 ms for the given number of
// seconds and prints one line at every change of second or clock state,
// with the second formatted as a kernel clock means it: during TIME_OOP the
// kernel repeats 23:59:59, and that repeated second is 23:59:60.
//
//   skytime-vm-leapwatch SECONDS
//
// Built static on the host by tests/vm/run.sh and copied into the guest.
#include <stdio.h>
#include <stdlib.h>
#include <sys/timex.h>
#include <time.h>
#include <unistd.h>

static const char *state_name(int s)
{
	switch (s) {
	case TIME_OK: return "TIME_OK";
	case TIME_INS: return "TIME_INS";
	case TIME_DEL: return "TIME_DEL";
	case TIME_OOP: return "TIME_OOP";
	case TIME_WAIT: return "TIME_WAIT";
	case TIME_ERROR: return "TIME_ERROR";
	default: return "?";
	}
}

int main(int argc, char **argv)
{
	double seconds = argc > 1 ? atof(argv[1]) : 10.0;
	long last_sec = -1;
	int last_state = -100;
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct timex tx = { .modes = 0 };
		int state = adjtimex(&tx);
		long sec = tx.time.tv_sec;
		if (state < 0) {
			perror("adjtimex");
			return 1;
		}
		if (sec != last_sec || state != last_state) {
			struct tm tm;
			time_t shown = sec;
			int leap = state == TIME_OOP;
			gmtime_r(&shown, &tm);
			/* With STA_NANO the "usec" field holds nanoseconds. */
			long ms = tx.time.tv_usec / (tx.status & STA_NANO ? 1000000 : 1000);
			printf("%04d-%02d-%02d %02d:%02d:%02d.%03ld %s status 0x%04x%s%s tai %d\n",
			       tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
			       tm.tm_min, tm.tm_sec + leap, ms,
			       state_name(state), tx.status,
			       tx.status & STA_INS ? " INS" : "",
			       tx.status & STA_UNSYNC ? " UNSYNC" : "", tx.tai);
			fflush(stdout);
			last_sec = sec;
			last_state = state;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 > seconds)
			return 0;
		usleep(20000);
	}
}
