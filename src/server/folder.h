/* folder.h - the storage folder as this server opens it: alone, or as one
 * node of a cluster sharing it with the others (docs/cluster.md, "Files").
 * Startup only: a folder someone else holds is a one-line fatal error that
 * says who. */
#ifndef BOTTLE_FOLDER_H
#define BOTTLE_FOLDER_H

struct server_config;
struct store;

/* store_open for cfg: with --cluster, shared by the nodes whose --cluster
 * has the same prefix; the node's name goes into its partials' owner
 * records. Exits on failure. */
struct store *folder_open(const struct server_config *cfg);

#endif
