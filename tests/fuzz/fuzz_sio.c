/* fuzz_sio.c: libFuzzer target for the gateway's packet layer: a polling
 * body split into Engine.IO packets, each message decoded as a Socket.IO
 * packet, events re-encoded and decoded again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "eio.h"
#include "sio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct eio_payload_iter it;
	struct eio_packet pk;

	eio_payload_iter_init(&it, (const char *)data, size);
	while (eio_payload_next(&it, &pk) > 0) {
		struct sio_packet sp;
		const char *err = NULL;

		if (pk.type != EIO_MESSAGE || pk.binary)
			continue;
		if (!sio_packet_decode(pk.data, pk.len, &sp, &err)) {
			if (err == NULL)
				abort();  /* a refusal always says why */
			continue;
		}
		const char *name = sio_event_name(&sp);
		if (name != NULL) {
			struct buf b;
			struct sio_packet again;
			const char *err2 = NULL;

			/* An event we accepted survives our own encoding. */
			buf_init(&b, 1 << 22);
			if (sio_encode_event(&b, "/", name, NULL, 0)) {
				if (!sio_packet_decode(b.data, b.len, &again, &err2))
					abort();
				sio_packet_free(&again);
			}
			buf_free(&b);
		}
		sio_packet_free(&sp);
	}
	return 0;
}
