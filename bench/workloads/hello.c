/* hello: the start-up benchmark. A static glibc hello world: what it costs is loading, libc's
   start-up code and printf, translated cold or loaded from a warm persistent cache. */
#include <stdio.h>

int main(void) {
    printf("hello, world\n");
    return 0;
}
