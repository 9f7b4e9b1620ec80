#include "kiln/data/reader.h"
