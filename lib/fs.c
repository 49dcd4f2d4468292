/* mkdir -p and atomic small-file writes for the whole library and the programs: the one copy of
 * each (they were written out in the tracking store, its server client, bio-synth and
 * bio-train). */
#include "bio/fs.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int nomem(const char *path, struct bio_error *err)
{
	return bio_error_set(err, BIO_ENOMEM, "%s: out of memory", path);
}

char *bio_fs_path_join(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

int bio_fs_mkdir_p(const char *path, struct bio_error *err)
{
	char *p = strdup(path);
	if (!p)
		return nomem(path, err);
	int rc = 0;
	for (char *s = p + 1;; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		/* a parent that is not a directory fails the next mkdir with ENOTDIR */
		if (mkdir(p, 0777) != 0 && errno != EEXIST) {
			rc = bio_error_set(err, BIO_EIO, "%s: cannot create directory: %s", path,
					   strerror(errno));
			break;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	struct stat st;
	if (rc == 0 && (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)))
		rc = bio_error_set(err, BIO_EIO, "%s: not a directory", path);
	return rc;
}

int bio_fs_mkdir_parent(const char *path, struct bio_error *err)
{
	char *d = strdup(path);
	if (!d)
		return nomem(path, err);
	char *slash = strrchr(d, '/');
	int rc = 0;
	if (slash && slash != d) {
		*slash = '\0';
		rc = bio_fs_mkdir_p(d, err);
	}
	free(d);
	return rc;
}

int bio_fs_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void bio_fs_sync_dir(const char *path)
{
	char *dcopy = strdup(path);
	if (dcopy) {
		int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dcopy);
	}
}

int bio_fs_write_atomic(const char *path, const void *data, size_t len, const char *tmp_dir,
			int sync, struct bio_error *err)
{
	int rc = bio_fs_mkdir_parent(path, err);
	if (rc)
		return rc;
	char *dcopy = NULL;
	if (!tmp_dir) {
		if (!(dcopy = strdup(path)))
			return nomem(path, err);
		tmp_dir = dirname(dcopy);
	}
	size_t n = strlen(tmp_dir) + sizeof "/.bio-tmp-XXXXXX";
	char *tmp = malloc(n);
	if (!tmp) {
		free(dcopy);
		return nomem(path, err);
	}
	snprintf(tmp, n, "%s/.bio-tmp-XXXXXX", tmp_dir);
	int fd = mkstemp(tmp);
	if (fd < 0) {
		rc = bio_error_set(err, BIO_EIO, "%s: cannot create a temporary file: %s", tmp_dir,
				   strerror(errno));
		goto out;
	}
	if (bio_fs_write_all(fd, data, len) != 0 || (sync && fsync(fd) != 0)) {
		rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(tmp);
		goto out;
	}
	fchmod(fd, 0644); /* mkstemp's is 0600; reading the umask would change it under threads */
	if (close(fd) != 0 || rename(tmp, path) != 0) {
		rc = bio_error_set(err, BIO_EIO, "%s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (sync)
		bio_fs_sync_dir(path);
out:
	free(tmp);
	free(dcopy);
	return rc;
}
