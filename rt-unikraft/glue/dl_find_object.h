/*
 * The result type of glibc's _dl_find_object, which gcc's unwinder (libgcc_eh.a, built
 * against glibc 2.36 on Debian) calls to find the unwind table of a return address. musl
 * has no such call, so the glue provides it: dl_find_object.inc in a Unikraft image,
 * hosted_dl_find_object.inc in the hosted-musl harness.
 */
#ifndef RT_UNIKRAFT_DL_FIND_OBJECT_H
#define RT_UNIKRAFT_DL_FIND_OBJECT_H

/* glibc's struct dl_find_object on x86_64 (which has no dlfo_eh_dbase / dlfo_eh_count). */
struct rt_unikraft_dl_find_object {
	unsigned long long dlfo_flags;
	void *dlfo_map_start;
	void *dlfo_map_end;
	void *dlfo_link_map;
	void *dlfo_eh_frame;
	unsigned long long reserved[7];
};

int _dl_find_object(void *pc, struct rt_unikraft_dl_find_object *result);

#endif
