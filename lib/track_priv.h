/* Between the file store (track.c) and the tracking-server client (track_http.c), which journals
 * a server run in a file-store run and hooks its flush and free there. Not installed. */
#ifndef BIO_TRACK_PRIV_H
#define BIO_TRACK_PRIV_H

#include "bio/track.h"

struct bio_track_hooks {
	/* sends what the journal holds and the server has not acknowledged */
	int (*flush)(void *ud, struct bio_track_run *run, int now, struct bio_error *err);
	void (*free)(void *ud);
};

/* Attaches hooks (borrowed, static) and ud (taken: hooks->free frees it with the run). */
void bio_track_run_set_hooks(struct bio_track_run *run, const struct bio_track_hooks *hooks,
			     void *ud);
void *bio_track_run_hook_data(const struct bio_track_run *run);

/* What meta.yaml holds (strings borrowed from run). */
struct bio_track_run_info {
	const char *root, *run_name, *user_id;
	int64_t start_time, end_time; /* end_time -1: none */
	int status;
};
void bio_track_run_info(const struct bio_track_run *run, struct bio_track_run_info *info);

/* Like bio_track_run_open, but leaves the run's status and end time as they are. */
struct bio_track_run *bio_track_run_load(const char *root_uri, const char *run_id,
					 struct bio_error *err);

/* The string value of top-level key of the YAML file meta_path (new); BIO_ENOTFOUND when absent
 * or null. */
int bio_track_meta_get(char **value, const char *meta_path, const char *key,
		       struct bio_error *err);

/* 0 while model URIs refer to each other at most 4 deep (depth: how many came before uri), else
 * BIO_ELIMIT naming uri: models:/ URIs whose sources are models:/ URIs again, in a circle. */
int bio_track_uri_depth_check(const char *uri, int depth, struct bio_error *err);
/* base "/" rest with rest's leading slashes dropped, or base alone when nothing is left of rest
 * (runs:/ID/PATH resolved against the run's artifacts); new, NULL when out of memory. */
char *bio_track_artifact_path(const char *base, const char *rest);

#endif
