/* Unit tests of lib/git.c: bio_git_head reads a detached HEAD, a branch's ref file, packed-refs,
 * from a subdirectory of the work tree, and finds nothing where there is no commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "bio/error.h"
#include "bio/git.h"
#include "test.h"

static char root[] = "/tmp/bio-test-git-XXXXXX";
static const char *const A = "0123456789abcdef0123456789abcdef01234567";
static const char *const B = "fedcba9876543210fedcba9876543210fedcba98";

static void put(const char *rel, const char *text)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", root, rel);
	FILE *f = fopen(p, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void dir(const char *rel)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", root, rel);
	CHECK(mkdir(p, 0777) == 0);
}

TEST(git_head_reads_every_form)
{
	char out[41], sub[512], line[128];
	snprintf(sub, sizeof sub, "%s/src/deep", root);
	CHECK_EQ(bio_git_head(out, root), BIO_ENOTFOUND); /* no repository (none above /tmp) */
	dir(".git");
	dir(".git/refs");
	dir(".git/refs/heads");
	dir("src");
	dir("src/deep");
	snprintf(line, sizeof line, "%s\n", A);
	put(".git/HEAD", line); /* detached */
	CHECK_EQ(bio_git_head(out, root), 0);
	CHECK_STR(out, A);
	CHECK_EQ(bio_git_head(out, sub), 0); /* found from below */
	CHECK_STR(out, A);
	put(".git/HEAD", "ref: refs/heads/main\n");
	CHECK_EQ(bio_git_head(out, sub), BIO_ENOTFOUND); /* an unborn branch */
	snprintf(line, sizeof line, "# pack-refs with: peeled fully-peeled sorted\n%s refs/heads/main\n", B);
	put(".git/packed-refs", line);
	CHECK_EQ(bio_git_head(out, sub), 0);
	CHECK_STR(out, B);
	snprintf(line, sizeof line, "%s\n", A);
	put(".git/refs/heads/main", line); /* the loose ref wins over packed-refs */
	CHECK_EQ(bio_git_head(out, sub), 0);
	CHECK_STR(out, A);
	put(".git/HEAD", "ref: ../../etc/passwd\n");
	CHECK_EQ(bio_git_head(out, sub), BIO_ENOTFOUND);
	put(".git/HEAD", "not a hash\n");
	CHECK_EQ(bio_git_head(out, sub), BIO_ENOTFOUND);
}

TEST_MAIN_IN_TMPDIR(root, TEST_CASE(git_head_reads_every_form))
