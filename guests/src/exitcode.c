/* exitcode: one line on stderr, one on stdout, exit status 42. */
#include "sys.h"

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fput_str(2, "exitcode: this line goes to stderr\n");
    put_str("exitcode: this line goes to stdout, exiting with 42\n");
    return 42;
}
