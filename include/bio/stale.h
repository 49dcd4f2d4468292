/* Temp files left by killed processes: writers name their temp files with their PID, so the next
 * writer of the same output can tell a dead writer's debris (kill -9 in the middle of a write)
 * from a live concurrent writer's file, and remove only the former. */
#ifndef BIO_STALE_H
#define BIO_STALE_H

/* Removes the entries of dir (borrowed) named prefix + PID, optionally followed by '.' and
 * anything, whose PID is not a running process (kill(PID, 0) fails with ESRCH, or a zombie). Our own PID and
 * live ones are kept, as are names that do not parse. Best effort: returns the number removed. */
int bio_remove_stale_temps(const char *dir, const char *prefix);

#endif
