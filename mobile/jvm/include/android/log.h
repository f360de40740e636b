/*
 * The one Android NDK header gobind's JNI glue includes, for building that
 * glue for a desktop JVM (mobile/jvm/build.sh): the log priorities and
 * __android_log_print, which log.c implements on standard error. Android
 * itself uses the NDK's header and liblog.
 */
#ifndef REDPANDA_JVM_ANDROID_LOG_H
#define REDPANDA_JVM_ANDROID_LOG_H

typedef enum android_LogPriority {
	ANDROID_LOG_UNKNOWN = 0,
	ANDROID_LOG_DEFAULT,
	ANDROID_LOG_VERBOSE,
	ANDROID_LOG_DEBUG,
	ANDROID_LOG_INFO,
	ANDROID_LOG_WARN,
	ANDROID_LOG_ERROR,
	ANDROID_LOG_FATAL,
	ANDROID_LOG_SILENT,
} android_LogPriority;

int __android_log_print(int prio, const char *tag, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
