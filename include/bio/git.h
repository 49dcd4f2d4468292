/* The git commit a run was made from, read from the repository's files (no git process), for the
 * tracking store's mlflow.source.git.commit tag. */
#ifndef BIO_GIT_H
#define BIO_GIT_H

/* The commit checked out in the git work tree holding dir (borrowed; NULL: the current
 * directory), searched upwards for .git/HEAD: a detached HEAD's hash, or its branch's from the
 * ref file or packed-refs. Writes 40 lowercase hex digits and a NUL into out; returns 0, or
 * BIO_ENOTFOUND when there is no repository or no commit to read (a ref naming "..", an
 * unborn branch). */
int bio_git_head(char out[41], const char *dir);

#endif
