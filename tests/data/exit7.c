#include <stdio.h>
int main(void) { printf("hello from the guest\n"); return 7; }
