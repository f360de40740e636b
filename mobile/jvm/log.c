/* __android_log_print for a desktop JVM: one line on standard error. */
#include <stdarg.h>
#include <stdio.h>

#include "android/log.h"

int __android_log_print(int prio, const char *tag, const char *fmt, ...) {
	static const char *const names = "??VDIWEFS";
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%c/%s: ", prio >= 0 && prio <= ANDROID_LOG_SILENT ? names[prio] : '?', tag);
	int n = vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return n;
}
