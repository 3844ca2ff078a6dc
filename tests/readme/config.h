/* What README.md's pool_config fragments take from the program around them. */
#include <md5pool.h>

extern pool_config cfg;
