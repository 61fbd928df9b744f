/* The HTTP side of the server (libmicrohttpd). */
#ifndef EMBER_SERVER_HTTP_H
#define EMBER_SERVER_HTTP_H

#include <sys/socket.h>

#include "server_internal.h"

/* Listen on addr and serve on libmicrohttpd's own thread; NULL on failure
 * (libmicrohttpd has logged why). */
struct MHD_Daemon *http_start(server *s, const struct sockaddr *addr, int ipv6);

#endif
