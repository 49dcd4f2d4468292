/* Frees many heap blocks in one statement, for the _free and _destroy functions of structs
 * that own a list of them. Used inside libbio only; not installed. */
#ifndef BIO_FREE_LIST_H
#define BIO_FREE_LIST_H

#include <stddef.h>
#include <stdlib.h>

/* Frees each of the n pointers in p (each taken; NULL ones are no-ops), first to last. */
static inline void bio_free_n(void *const *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i]);
}

/* Frees n strings (taken), then the array v holding them (taken); v NULL is a no-op. */
static inline void bio_free_strs(char **v, size_t n)
{
	if (v)
		for (size_t i = 0; i < n; i++)
			free(v[i]);
	free(v);
}

/* BIO_FREE(a, b, ...): free(a); free(b); ... in that order. */
#define BIO_FREE(...)                                                                              \
	bio_free_n((void *const[]){__VA_ARGS__}, sizeof((void *[]){__VA_ARGS__}) / sizeof(void *))

#endif
