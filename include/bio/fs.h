/* Files and directories every stage writes: mkdir -p, and small files written atomically (a
 * temp file on the same file system, fsync when asked, rename over the target), so a reader
 * sees the old file or the new one, never a part. */
#ifndef BIO_FS_H
#define BIO_FS_H

#include <stddef.h>

#include "bio/error.h"

/* "dir/name" as a new string (NULL when out of memory); dir and name borrowed. */
char *bio_fs_path_join(const char *dir, const char *name);
/* Creates the directory path (borrowed) and its missing parents, like mkdir -p. Errors name
 * path: "<path>: cannot create directory: <cause>", or "<path>: not a directory" when path
 * exists as something else. */
int bio_fs_mkdir_p(const char *path, struct bio_error *err);
/* bio_fs_mkdir_p of path's directory (nothing when path has no '/'). */
int bio_fs_mkdir_parent(const char *path, struct bio_error *err);
/* Writes len bytes of data (borrowed) to path atomically: a new temp file ".bio-tmp-XXXXXX" in
 * tmp_dir (NULL: path's own directory; either way on path's file system), then rename over path;
 * with sync, the temp file is fsync'd before and its directory after the rename. Creates the
 * parent of path. The file gets mode 0644. Errors name path. */
int bio_fs_write_atomic(const char *path, const void *data, size_t len, const char *tmp_dir,
			int sync, struct bio_error *err);
/* Writes all len bytes of data to fd (retrying short writes and EINTR); 0, or -1 with errno. */
int bio_fs_write_all(int fd, const void *data, size_t len);
/* fsync of path's directory, making a rename in it durable (best effort). */
void bio_fs_sync_dir(const char *path);

#endif
