// Anchor for the veer_rules static library (keeps the archive non-empty while the module grows).
namespace veer::rules {
int moduleAnchor() { return 0; }
}  // namespace veer::rules
