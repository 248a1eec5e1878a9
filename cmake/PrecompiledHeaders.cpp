// The translation unit that carries the precompiled ATen headers which the
// programs and static libraries share (CMakeLists.txt, bg_precompile_headers).
