/* fake_upstream.c: a fake OpenAI-compatible upstream for the tests and the
 * offline demo.
 *
 * One process, one thread, one epoll loop. Connections are non-blocking;
 * output is buffered and drained on EPOLLOUT; every delay (token cadence,
 * stalls, lingering close) is a deadline in one min-heap, so thousands of
 * concurrent streams cost one heap operation per token.
 *
 * Endpoints: POST /v1/chat/completions (plain and SSE), GET /v1/models,
 * POST /v1/realtime/client_secrets, POST /v1/realtime/sessions,
 * POST /v1/realtime/calls and POST /v1/realtime (SDP), OPTIONS (CORS),
 * GET /_fake/stats, POST /_fake/reset.
 *
 * Chat replies are deterministic and steered by directives written into the
 * last user message, e.g. "hi [[tokens=5]] [[delay=50]]":
 *
 *   [[request]]             reply = the request body re-serialized by json-c
 *   [[system]]              reply = "System prompt: " + first system message
 *   [[tokens=N]]            reply = "t0 t1 ... t<N-1>" (N <= 100000)
 *   [[raw=TEXT]]            reply = TEXT verbatim (ends at the first "]]")
 *   [[delay=MS]]            token interval (0..10000), default --delay-ms
 *   [[status=CODE]]         answer CODE (400..599) with an error JSON
 *   [[retry-after=S]]       with status: add "Retry-After: S"
 *   [[retry-after-ms=MS]]   with status: add "retry-after-ms: MS"
 *   [[fail-first=N]]        with status: only the first N matching requests fail
 *   [[key=K]]               fail-first bucket (default: the text without directives)
 *   [[error-after=K]]       after K tokens: data: {"error":...}, end without [DONE]
 *   [[event-error-after=K]] same as "event: error"
 *   [[drop-after=K]]        after K tokens: close the connection mid-body
 *   [[stall-headers=MS]]    wait before the response headers
 *   [[stall-first=MS]]      wait between the headers and the role chunk
 *   [[stall-after=K:MS]]    after K tokens wait MS more
 *   [[split=odd]]           send each SSE event in pieces of 1, 3, 5... bytes
 *   [[split-gap=MS]]        with split: wait MS between pieces (default 0)
 *   [[crlf]]                CRLF line endings in the SSE stream
 *   [[comments]]            ": ping" comments before the role chunk and tokens
 *   [[no-usage]]            never send the usage chunk
 *
 * A request whose first message is a system message starting "Write a
 * title" (the web UI naming a new chat) is answered with the first six
 * words of the last user message, as a model would write a title.
 *
 * Layout, one concern per file: server (process, epoll loop), timer (the
 * deadline heap), conn (connections), http_parse and http_respond (HTTP/1.x),
 * route (the route table), chat, stream and sse (chat completions),
 * directives and fail (steering and misbehaviour), models, realtime and sdp
 * (the other endpoints), stats (counters, /_fake/), and the helpers buf,
 * json, map and util.
 */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "directives.h"
#include "server.h"
#include "util.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: fake-upstream --listen HOST:PORT [--api-key KEY] "
	    "[--delay-ms N] [--quiet]\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "api-key", required_argument, NULL, 'k' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *listen_spec = NULL;
	int ch;

	srv.delay_ms = 20;
	while ((ch = getopt_long(argc, argv, "l:k:d:qh", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'k':
			srv.api_key = optarg;
			break;
		case 'd':
			if (!util_parse_long(optarg, strlen(optarg), 0, DELAY_MAX_MS,
			    &srv.delay_ms)) {
				fprintf(stderr, "fake-upstream: --delay-ms takes 0..%ld\n",
				    DELAY_MAX_MS);
				return 2;
			}
			break;
		case 'q':
			srv.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (listen_spec == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((srv.lfd = srv_listen(listen_spec)) < 0) {
		fprintf(stderr, "fake-upstream: bad or unusable --listen %s\n",
		    listen_spec);
		return 1;
	}
	if (!srv_setup() || !srv_announce()) {
		fprintf(stderr, "fake-upstream: setup: %s\n", strerror(errno));
		srv_cleanup();
		return 1;
	}
	return srv_run();
}
