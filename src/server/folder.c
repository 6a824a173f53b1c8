/* folder.c - opening the storage folder (folder.h). The rule: one folder,
 * one writer, where a cluster counts as one writer because its nodes lock
 * every partial they write; a stray server beside them is refused. */
#include "folder.h"
#include "cluster_url.h"
#include "log.h"
#include "server.h"
#include "store.h"

#include <errno.h>

/* Why the folder is not ours, in words that say what to do. */
static _Noreturn void refuse(const struct server_config *cfg, const char *cluster,
                             const struct storelock_holder *h)
{
	if (!h->cluster[0])
		fatalx(1,
		       "storage folder %s is in use by another bottled (pid %ld); "
		       "give each server its own --dir",
		       cfg->dir, h->pid);
	if (!cluster)
		fatalx(1,
		       "storage folder %s is shared by the nodes of cluster '%s'; "
		       "join it with --cluster, or give this server its own --dir",
		       cfg->dir, h->cluster);
	fatalx(1,
	       "storage folder %s is shared by the nodes of cluster '%s', not '%s'; "
	       "give each cluster its own --dir",
	       cfg->dir, h->cluster, cluster);
}

struct store *folder_open(const struct server_config *cfg)
{
	struct cluster_url url;
	char err[256];
	const char *cluster = NULL;

	if (cfg->cluster_url) {
		if (cluster_url_parse(cfg->cluster_url, &url, err, sizeof err) < 0)
			fatalx(2, "--cluster: %s", err);
		cluster = url.prefix;
	}
	struct storelock_holder holder;
	struct store *st = store_open(cfg->dir, cluster, &holder);
	if (!st && errno == EBUSY)
		refuse(cfg, cluster, &holder);
	if (!st)
		fatal(1, "cannot open storage folder %s", cfg->dir);
	if (cfg->node_name)
		store_set_node(st, cfg->node_name);
	if (cluster)
		log_info("storage folder %s: shared with the nodes of cluster '%s'", cfg->dir,
		         cluster);
	return st;
}
