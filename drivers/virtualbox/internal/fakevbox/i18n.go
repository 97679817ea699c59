package fakevbox

import "strings"

// VirtualBox 7.0 and later translate what VBoxManage prints (the
// VBoxManage component: Russian only, nls/ApprovedLanguages.kmk) and the
// API's error texts that VBoxSVC sends (the VirtualBoxAPI component:
// Russian and Turkish). 6.1 has no translations. The fake knows the
// Russian texts of the messages it prints.
//
// Which language a process uses (Main/src-all/VirtualBoxTranslator.cpp):
// VirtualBox's own language setting (`VBoxManage setproperty language`,
// ISystemProperties::LanguageId) when set; otherwise, on Linux and the
// other Unixes, the first of LC_ALL, LC_MESSAGES and LANG that is set,
// taken when it reads "ll" or "ll_CC" once the ".codeset" is cut off;
// anything else ("C", "POSIX", "C.UTF-8") means no translation.
// VBoxManage decides for itself; VBoxSVC decided once, when it started,
// from its own environment.

// language returns the language a VirtualBox process picks: "ru", "ru_RU",
// or "C".
func language(setting string, getenv func(string) string) string {
	if setting != "" {
		return setting
	}
	for _, k := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		val := getenv(k)
		if val == "" {
			continue
		}
		val, _, _ = strings.Cut(val, ".")
		if isLangCode(val) {
			return val
		}
		return "C"
	}
	return "C"
}

func isLangCode(s string) bool {
	lower := func(b byte) bool { return b >= 'a' && b <= 'z' }
	upper := func(b byte) bool { return b >= 'A' && b <= 'Z' }
	switch len(s) {
	case 2:
		return lower(s[0]) && lower(s[1])
	case 5:
		return lower(s[0]) && lower(s[1]) && s[2] == '_' && upper(s[3]) && upper(s[4])
	}
	return false
}

// russian reports whether lang loads the Russian translation files
// (VBoxManageNls_ru.qm, VirtualBoxAPI_ru.qm: "ru_RU" falls back to "ru").
func russian(lang string) bool { return lang == "ru" || strings.HasPrefix(lang, "ru_") }

// ruVBoxManage holds the Russian of VBoxManage's own texts the fake prints,
// as src/VBox/Frontends/VBoxManage/nls/VBoxManageNls_ru.ts (7.1) has them,
// keyed by the English source text (with the fake's Go verbs in place of
// IPRT's).
var ruVBoxManage = map[string]string{
	// VBoxManageHostonly.cpp
	"Interface '%s' was successfully created\n": "Интерфейс '%s' успешно создан\n",
	// VBoxManageDisk.cpp
	"Capacity:       %d MBytes\n":                                         "Емкость:       %d MB\n",
	"Clone medium created in format '%s'. UUID: %s\n":                     "Создан клонированный носитель в формате '%s'. UUID: %s\n",
	"Failed to clone medium":                                              "Не удалось клонировать носитель",
	"Virtual machine '%s' is created%s.\nUUID: %s\nSettings file: '%s'\n": "Виртуальная машина '%s' создана%s.\nUUID: %s\nФайл настроек: '%s'\n",
	// VBoxManageMisc.cpp
	" and registered":              " и зарегистрирована",
	"Parameter --name is required": "Требуется параметр --name",
	// VBoxManageControlVM.cpp
	"Machine '%s' is not currently running.": "Машина '%s' сейчас не запущена.",
	// VBoxManage.cpp, VBoxManageHelp.cpp
	"Invalid command '%s'": "Недопустимая команда '%s'",
	"Unknown option: %s":   "Неизвестная опция: %s",
	// VBoxManageList.cpp (list hostonlyifs, list hostonlynets)
	"Name:            %s\n":   "Имя:            %s\n",
	"IPAddress:       %s\n":   "IP адрес:       %s\n",
	"NetworkMask:     %s\n":   "Сетевая маска:     %s\n",
	"State:           %s\n":   "Состояние:           %s\n",
	"LowerIP:         %s\n":   "Нижний IP:         %s\n",
	"UpperIP:         %s\n":   "Верхний IP:         %s\n",
	"Enabled":                 "Включено",
	"Disabled":                "Отключено",
	"VBoxNetworkName: %s\n\n": "Имя сети VBox: %s\n\n",
}

// ruAPI holds the Russian of the API error texts the fake prints, as
// src/VBox/Main/nls/VirtualBoxAPI_ru.ts (7.1) has them.
var ruAPI = map[string]string{
	// VirtualBoxImpl.cpp
	"Could not find a registered machine named '%s'":                 "Невозможно найти зарегистрированную машину с именем '%s'",
	"'Creating VMs for platform architecture %s not supported on %s": "'Создание машин для архитектуры платформы %s не поддерживается на %s",
	// MachineImpl.cpp
	"The machine '%s' is already locked for a session (or being unlocked)":          "Машина '%s' уже заблокирована для сессии (или разблокируется)",
	"The machine '%s' is already locked by a session (or being locked or unlocked)": "Машина '%s' уже заблокирована сессией  (или блокируется или разблокируется)",
	"Cannot unregister the machine '%s' while it is locked":                         "Невозможно отменить регистрацию машины '%s' пока она заблокирована",
	"Machine settings file '%s' already exists":                                     "Файл настроек машины '%s' уже существует",
	// MediumImpl.cpp
	"UUID {%s} of the medium '%s' does not match the value {%s} stored in the media registry ('%s')": "UUID {%s} носителя '%s' не сответствует значению {%s} сохраненному в реестре носителей ('%s')",
	"Could not find file for the medium '%s' (%s)":                                                   "Невозможно найти файл для носителя '%s' (%s)",
	// ConsoleImpl.cpp
	"Cannot run the machine because its platform architecture %s is not supported on %s": "Невозможно запустить машину поскольку архитектура её платформы %s не поддерживается на %s",
	// AutoCaller.cpp
	"The object is not ready": "Объект не готов",
}

// tr is a VBoxManage text in VBoxManage's language.
func (v *vbox) tr(s string) string {
	if v.modern() && russian(v.langCLI) {
		if t, ok := ruVBoxManage[s]; ok {
			return t
		}
	}
	return s
}

// trAPI is an API error text in VBoxSVC's language.
func (v *vbox) trAPI(s string) string {
	if v.modern() && russian(v.langSVC) {
		if t, ok := ruAPI[s]; ok {
			return t
		}
	}
	return s
}
