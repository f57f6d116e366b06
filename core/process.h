/* process.h: process-wide set-up shared by chatd and the gateway. */
#ifndef CHAT_PROCESS_H
#define CHAT_PROCESS_H

/* Raises the soft limit on open descriptors to the hard limit: each stream
 * holds a few (client, upstream, maybe database). Logs when it cannot. */
void process_raise_fd_limit(void);

#endif
