// Link-time hooks of the static `spyglass` executable only (the library and the tests do not link
// this target). See static_link.c.
#ifndef CSTATICLINK_H
#define CSTATICLINK_H
/// Referenced by the executable so that this object is linked.
int spy_static_link_hooks(void);
#endif
