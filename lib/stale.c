/* Removing temp files of writers that died (see bio/stale.h). */
#include "bio/stale.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* True when pid is no running process: gone (ESRCH), or a zombie not reaped yet (Linux: state
 * 'Z' in /proc/PID/stat) -- a killed writer whose parent has not waited for it. */
static int pid_dead(long pid)
{
	if (kill((pid_t)pid, 0) != 0)
		return errno == ESRCH;
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	const char *rp = strrchr(buf, ')'); /* "pid (comm) S ...": comm may hold spaces */
	return rp && rp[1] == ' ' && rp[2] == 'Z';
}

int bio_remove_stale_temps(const char *dir, const char *prefix)
{
	size_t plen = strlen(prefix);
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *name = e->d_name;
		if (strncmp(name, prefix, plen) != 0)
			continue;
		const char *p = name + plen;
		if (*p < '0' || *p > '9')
			continue;
		char *end;
		errno = 0;
		long pid = strtol(p, &end, 10);
		if (errno || (*end && *end != '.') || pid <= 0 || pid > INT32_MAX ||
		    pid == (long)getpid())
			continue;
		if (!pid_dead(pid))
			continue; /* alive (or not ours to signal): keep */
		size_t len = strlen(dir) + strlen(name) + 2;
		char *full = malloc(len);
		if (!full)
			break;
		snprintf(full, len, "%s/%s", dir, name);
		n += unlink(full) == 0;
		free(full);
	}
	closedir(d);
	return n;
}
