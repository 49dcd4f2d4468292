/* bio_git_head: .git/HEAD, the ref file it names, or packed-refs, read as plain files. */
#include "bio/git.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bio/error.h"
#include "bio/fs.h"

/* The first line of path without its line break, into a new string; NULL when the file cannot
 * be read or the line is empty. */
static char *read_line(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, f);
	fclose(f);
	if (n <= 0) {
		free(line);
		return NULL;
	}
	line[strcspn(line, "\r\n")] = '\0';
	if (!line[0]) {
		free(line);
		return NULL;
	}
	return line;
}

static int is_sha1(const char *s)
{
	return strlen(s) == 40 && strspn(s, "0123456789abcdef") == 40;
}

/* The commit of ref (e.g. "refs/heads/main") in the git directory gdir: its ref file, else its
 * line of packed-refs. */
static int ref_commit(char out[41], const char *gdir, const char *ref)
{
	int rc = BIO_ENOTFOUND;
	char *path = bio_fs_path_join(gdir, ref), *line = path ? read_line(path) : NULL;
	if (line && is_sha1(line)) {
		memcpy(out, line, 41);
		rc = 0;
	}
	free(line);
	free(path);
	if (rc == 0)
		return rc;
	path = bio_fs_path_join(gdir, "packed-refs");
	FILE *f = path ? fopen(path, "r") : NULL;
	line = NULL;
	size_t cap = 0;
	while (f && rc && getline(&line, &cap, f) > 0) {
		line[strcspn(line, "\r\n")] = '\0';
		if (strlen(line) > 41 && line[40] == ' ' && strcmp(line + 41, ref) == 0) {
			line[40] = '\0';
			if (is_sha1(line)) {
				memcpy(out, line, 41);
				rc = 0;
			}
		}
	}
	if (f)
		fclose(f);
	free(line);
	free(path);
	return rc;
}

int bio_git_head(char out[41], const char *dir)
{
	char *d = dir ? strdup(dir) : getcwd(NULL, 0);
	int rc = BIO_ENOTFOUND;
	while (d) {
		char *gdir = bio_fs_path_join(d, ".git"), *head = gdir ? bio_fs_path_join(gdir, "HEAD") : NULL;
		char *line = head ? read_line(head) : NULL;
		if (line) { /* the nearest repository decides, found or not */
			if (is_sha1(line)) {
				memcpy(out, line, 41);
				rc = 0;
			} else if (strncmp(line, "ref: ", 5) == 0 && !strstr(line, "..")) {
				rc = ref_commit(out, gdir, line + 5);
			}
		}
		free(head);
		free(gdir);
		char *slash = strrchr(d, '/');
		if (line || !head || !slash || slash == d) {
			free(line);
			break;
		}
		*slash = '\0';
	}
	free(d);
	return rc;
}
