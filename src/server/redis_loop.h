/* redis_loop.h - hiredis's asynchronous API on our loop (loop.h): the
 * context's read/write hooks become the interest of its fd, readiness calls
 * redisAsyncHandleRead/Write. One thread; nothing blocks. */
#ifndef BOTTLE_REDIS_LOOP_H
#define BOTTLE_REDIS_LOOP_H

#include "loop.h"

#include <hiredis/async.h>

/* Called from hiredis's cleanup hook, just before hiredis frees the context
 * (after a disconnect, a failed connect, or redisAsyncFree): the owner forgets
 * its pointer there and must not free the context itself. */
typedef void redis_loop_gone_fn(void *data);

/* Hooks ac onto loop. Call it before setting the connect callback (which asks
 * for the first write event). 0, or -1 with errno if the fd can't be watched
 * (the caller then frees ac with redisAsyncFree). */
int redis_loop_attach(redisAsyncContext *ac, struct loop *loop, redis_loop_gone_fn *gone,
                      void *data);

#endif
