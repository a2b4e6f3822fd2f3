/* Real definitions that the libOpenEXR stub keeps (tools/gpu/stub_library.py --override).
 * OpenCV 4.6's ExrDecoder has an Imf::Chromaticities member (grfmt_exr.hpp, m_chroma), so its
 * constructor, which imgcodecs runs for every process when it registers its decoders, calls
 * Imf_3_1::Chromaticities::Chromaticities(V2f red, V2f green, V2f blue, V2f white). In OpenEXR 3.1
 * (src/lib/OpenEXR/ImfChromaticities.cpp) that constructor only copies its four arguments into the
 * members red, green, blue, white (four Imath::V2f, two floats each, in that order). */
typedef struct {
  float x, y;
} VlmV2f;

typedef struct {
  VlmV2f red, green, blue, white;
} VlmChromaticities;

void vlm_chromaticities_ctor(VlmChromaticities *self, const VlmV2f *red, const VlmV2f *green,
                             const VlmV2f *blue, const VlmV2f *white)
    __asm__("_ZN7Imf_3_114ChromaticitiesC1ERKN9Imath_3_14Vec2IfEES5_S5_S5_");
void vlm_chromaticities_ctor(VlmChromaticities *self, const VlmV2f *red, const VlmV2f *green,
                             const VlmV2f *blue, const VlmV2f *white) {
  self->red = *red;
  self->green = *green;
  self->blue = *blue;
  self->white = *white;
}
