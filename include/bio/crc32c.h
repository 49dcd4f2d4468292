/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, as in iSCSI, ext4 and Google's crc32c
 * library): the checksum that checkpoints carry per tensor and over their meta. */
#ifndef BIO_CRC32C_H
#define BIO_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Extends crc (0 to start) over n bytes of data (borrowed) and returns it:
 * bio_crc32c(0, "123456789", 9) == 0xE3069283. */
uint32_t bio_crc32c(uint32_t crc, const void *data, size_t n);

#endif
