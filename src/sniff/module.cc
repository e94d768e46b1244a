// Anchor for the veer_sniff static library (keeps the archive non-empty while the module grows).
namespace veer::sniff {
int moduleAnchor() { return 0; }
}  // namespace veer::sniff
