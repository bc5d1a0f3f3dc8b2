// One of two translation units of the ODR test (see odr.hpp); the other is odr_a.cpp.
#include <sae/train.hpp>  // includes sae.hpp: every header of the library

#include <string>

#include "odr.hpp"

#define SAE_ODR_FUNCTION odr_b
#include "odr_body.inc"
